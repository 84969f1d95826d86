//! `xinyong id check`: checks credit codes, organization codes, registration numbers
//! and identity numbers, from the arguments or one a line on stdin; exit 1 when one is
//! not valid.

use clap::{Subcommand, ValueEnum};
use pipeline::domain::ids;
use std::io::BufRead;

#[derive(Subcommand)]
pub enum IdCommand {
    /// Check codes given as arguments, or one a line on stdin.
    Check {
        /// Kind of code (default: guessed from the length).
        #[arg(long, value_enum)]
        kind: Option<IdKind>,
        /// Codes.
        codes: Vec<String>,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum IdKind {
    Uscc,
    Org,
    Regno,
    Ric,
}

fn id_line(kind: Option<IdKind>, raw: &str) -> String {
    let code = ids::normalise_code(raw);
    let kind = kind.unwrap_or(match code.chars().count() {
        15 => IdKind::Regno,
        9 | 10 => IdKind::Org,
        18 if code.starts_with(|c: char| c.is_ascii_digit()) && ids::check_ric(&code).is_ok() => {
            IdKind::Ric
        }
        _ => IdKind::Uscc,
    });
    let (name, result) = match kind {
        IdKind::Uscc => ("uscc", ids::check_uscc(&code)),
        IdKind::Org => ("org", ids::check_org_code(&code)),
        IdKind::Regno => ("regno", ids::check_regno(&code)),
        IdKind::Ric => ("ric", ids::check_ric(&code)),
    };
    let verdict = match result {
        Ok(()) if kind == IdKind::Uscc && !ids::uscc_known_type(&code) => {
            "valid (warning: unknown authority/type pair)".to_string()
        }
        Ok(()) => "valid".to_string(),
        Err(e) => format!("{name}_{}", e.code()),
    };
    format!("{raw}\t{code}\t{name}\t{verdict}")
}

/// `xinyong id`.
pub fn id(command: IdCommand) -> anyhow::Result<i32> {
    let IdCommand::Check { kind, codes } = command;
    let mut any_invalid = false;
    let mut out = |raw: &str| {
        let line = id_line(kind, raw);
        any_invalid |= !line.ends_with("valid") && !line.contains("\tvalid (");
        outln!("{line}");
    };
    if codes.is_empty() {
        for line in std::io::stdin().lock().lines() {
            let line = line?;
            if !line.trim().is_empty() {
                out(line.trim_end_matches(['\r', '\n']));
            }
        }
    } else {
        for c in &codes {
            out(c);
        }
    }
    Ok(if any_invalid { 1 } else { 0 })
}
