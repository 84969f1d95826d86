//! One module per kind of source.

pub mod csv_file;
pub mod file_drop;
pub mod sql;
pub mod xlsx_file;
