//! The domain's rules, apart from any stage that applies them: the accounting of rows,
//! the provincial schema as data, identifier checks, the working-day calendar, masking of personal data, the
//! reasons a row is refused, and how a record's identity and version are derived.

pub mod accounting;
pub mod calendar;
pub mod identity;
pub mod ids;
pub mod masking;
pub mod reasons;
pub mod schema;
