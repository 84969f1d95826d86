//! One module per kind of source.

pub mod csv_file;
pub mod file_drop;
pub mod http;
pub mod sql;
pub mod xlsx_file;

/// Who runs a network source's futures: the caller's runtime (sources run inside
/// `spawn_blocking`, where blocking on it is allowed) or, outside any runtime, one of
/// the source's own.
pub(crate) enum Runtime {
    Caller(tokio::runtime::Handle),
    Own(tokio::runtime::Runtime),
}

impl Runtime {
    pub(crate) fn current_or_own() -> std::io::Result<Runtime> {
        Ok(match tokio::runtime::Handle::try_current() {
            Ok(h) => Runtime::Caller(h),
            Err(_) => Runtime::Own(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?,
            ),
        })
    }

    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match self {
            Runtime::Caller(h) => h.block_on(f),
            Runtime::Own(rt) => rt.block_on(f),
        }
    }
}
