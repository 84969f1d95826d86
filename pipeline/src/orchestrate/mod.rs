//! Running the pipeline: [`runner`] drives one run (every selected feed ingested on its
//! own, then every platform pushed), [`schedule`] fires runs from cron schedules with a
//! lease, [`summary`] renders a run's report for people, [`progress`] shows a feed's
//! progress, and [`status`] gathers what `xinyong status` and `holds` show.

pub mod alerts;
pub mod progress;
pub mod retention;
pub mod runner;
pub mod schedule;
pub mod status;
pub mod summary;
