//! The cells of one raw row, kept in one text buffer with their end offsets: two
//! allocations a row instead of one per cell (at a million rows of fourteen cells, the
//! per-cell strings were a sixth of the reader's time and their frees a tenth of the
//! mapper's).

/// A row's cell texts, exactly as decoded, in column order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Cells {
    text: String,
    ends: Vec<u32>,
}

impl Cells {
    /// No cells.
    pub fn new() -> Self {
        Cells::default()
    }

    /// Cells from a text holding them one after another and the end offset of each.
    ///
    /// # Panics
    /// When an end lies beyond the text, is out of order, or not on a character boundary.
    pub fn from_parts(text: String, ends: Vec<u32>) -> Self {
        let mut start = 0;
        for end in &ends {
            let end = *end as usize;
            assert!(
                start <= end && text.is_char_boundary(end),
                "cell ends must be ordered character boundaries"
            );
            start = end;
        }
        assert!(start <= text.len(), "cell ends within the text");
        Cells { text, ends }
    }

    /// Appends a cell.
    pub fn push(&mut self, cell: &str) {
        self.text.push_str(cell);
        self.ends
            .push(u32::try_from(self.text.len()).expect("a row under 4 GiB"));
    }

    /// The cells' texts one after another (for a scan of the whole row).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the row has no cell.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Cell `i`, if the row has it.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.text[start..end])
    }

    /// The cells in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i).expect("in range"))
    }

    /// The cells as owned strings.
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

impl std::ops::Index<usize> for Cells {
    type Output = str;
    fn index(&self, i: usize) -> &str {
        self.get(i).expect("cell index in range")
    }
}

impl std::fmt::Debug for Cells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<S: AsRef<str>> FromIterator<S> for Cells {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut cells = Cells::new();
        for c in iter {
            cells.push(c.as_ref());
        }
        cells
    }
}

impl From<Vec<String>> for Cells {
    fn from(v: Vec<String>) -> Self {
        v.iter().collect()
    }
}

impl<S: AsRef<str>> PartialEq<Vec<S>> for Cells {
    fn eq(&self, other: &Vec<S>) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_trip_with_empty_and_multibyte_cells() {
        let v = vec!["", "同江市", " a ", "", "〔2024〕"];
        let c: Cells = v.iter().collect();
        assert_eq!(c.len(), 5);
        assert_eq!(c.to_vec(), v);
        assert_eq!(&c[1], "同江市");
        assert_eq!(c.get(4), Some("〔2024〕"));
        assert_eq!(c.get(5), None);
        assert_eq!(c, v);
        let parts = Cells::from_parts("ab同".into(), vec![1, 1, 5]);
        assert_eq!(parts.to_vec(), vec!["a", "", "b同"]);
        assert!(Cells::new().is_empty());
    }

    #[test]
    #[should_panic(expected = "character boundaries")]
    fn ends_inside_a_character_are_refused() {
        Cells::from_parts("同".into(), vec![1]);
    }
}
