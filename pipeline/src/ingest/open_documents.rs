//! The document numbers of a feed's open problems, as the read pass needs them: the
//! runner reads them from the state store while the ingest opens its source and reads
//! the first rows (a night's read pass waited ~15 ms for the query, a tenth of a night
//! with changes in two months), and the mappers take them when they map their first
//! batch.

use super::IngestError;
use std::collections::HashSet;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, OnceLock};

/// The documents, or why the runner could not read them.
type Read = Result<HashSet<String>, String>;

/// The open problems' document numbers, given now or still on their way.
pub struct OpenDocuments {
    value: OnceLock<Read>,
    coming: Mutex<Option<Receiver<Read>>>,
}

/// Where the runner sends the documents (or why it could not read them).
pub type OpenDocumentsSender = SyncSender<Read>;

impl OpenDocuments {
    /// Documents to come through the returned sender.
    pub fn pending() -> (OpenDocumentsSender, Self) {
        let (tx, rx) = sync_channel(1);
        let this = OpenDocuments {
            value: OnceLock::new(),
            coming: Mutex::new(Some(rx)),
        };
        (tx, this)
    }

    /// The documents, waiting for them if they are on their way. An error when the
    /// runner could not read them (or went away without sending them): the ingest
    /// stops, as it would have before it started.
    pub fn get(&self) -> Result<&HashSet<String>, IngestError> {
        let value = self.value.get_or_init(|| {
            let coming = match self.coming.lock() {
                Ok(mut coming) => coming.take(),
                Err(_) => None,
            };
            match coming {
                Some(rx) => rx
                    .recv()
                    .unwrap_or_else(|_| Err("the run stopped before sending them".into())),
                None => Err("they were never sent".into()),
            }
        });
        value.as_ref().map_err(|e| {
            IngestError::Internal(format!(
                "the document numbers of the feed's open problems could not be read: {e}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_sent_later_are_waited_for_and_kept() {
        let (tx, docs) = OpenDocuments::pending();
        std::thread::scope(|s| {
            let waiting = s.spawn(|| docs.get().map(|d| d.len()).ok());
            std::thread::sleep(std::time::Duration::from_millis(20));
            tx.send(Ok(HashSet::from(["同市监罚〔2024〕1号".to_string()])))
                .unwrap();
            assert_eq!(waiting.join().unwrap(), Some(1));
        });
        assert!(docs.get().unwrap().contains("同市监罚〔2024〕1号"));
    }

    #[test]
    fn a_failed_read_or_a_dropped_sender_stops_the_ingest() {
        let (tx, docs) = OpenDocuments::pending();
        tx.send(Err("database is locked".into())).unwrap();
        let e = docs.get().unwrap_err().to_string();
        assert!(e.contains("database is locked"), "{e}");
        let (tx, docs) = OpenDocuments::pending();
        drop(tx);
        assert!(docs.get().is_err());
        let (tx, docs) = OpenDocuments::pending();
        tx.send(Ok(HashSet::new())).unwrap();
        assert!(docs.get().unwrap().is_empty());
    }
}
