//! `xinyong calendar`: the State Council working-day calendar — the N-th working day
//! after a date, working days between two dates, whether a date is a working day. The
//! configuration's `calendar` file (when there is a configuration) adds years; outside
//! the covered years the answer is an estimate from weekends alone, marked 估算 and
//! warned about, exit 0.

use clap::Subcommand;
use pipeline::domain::calendar::Calendar;

#[derive(Subcommand)]
pub enum CalendarCommand {
    /// The N-th working day after DATE (the decision day is not counted).
    Deadline {
        /// The decision date, YYYY-MM-DD.
        date: chrono::NaiveDate,
        /// N.
        #[arg(long, default_value_t = pipeline::domain::calendar::SHUANGGONGSHI_DAYS)]
        working_days: u32,
    },
    /// Working days after FROM up to and including TO.
    Between {
        /// From, YYYY-MM-DD (not counted).
        from: chrono::NaiveDate,
        /// To, YYYY-MM-DD (counted).
        to: chrono::NaiveDate,
    },
    /// Whether each DATE is a working day.
    Is {
        /// Dates, YYYY-MM-DD.
        dates: Vec<chrono::NaiveDate>,
    },
}

/// `xinyong calendar`.
pub fn calendar(
    config: Option<std::path::PathBuf>,
    command: CalendarCommand,
) -> anyhow::Result<i32> {
    // The deployment's calendar file, when a configuration is there (the command works
    // without one, on the built-in years).
    let path = super::config_path(config.clone(), false);
    if config.is_some() || path.exists() {
        super::load_config(&path)?;
    }
    let cal = Calendar::built_in();
    let (first, last) = cal.years();
    let mark = |estimated: bool| if estimated { "\t估算 estimate" } else { "" };
    let mut estimated_any = false;
    match command {
        CalendarCommand::Deadline { date, working_days } => {
            let Some(d) = cal.add_working_days_estimated(date, working_days) else {
                anyhow::bail!(
                    "{date} + {working_days} working days is past the last date there is"
                );
            };
            estimated_any |= d.estimated;
            outln!(
                "{}\t{} ({working_days} working days after {date}, which is not counted){}",
                d.value,
                weekday_zh(d.value),
                mark(d.estimated)
            );
        }
        CalendarCommand::Between { from, to } => {
            let n = cal.working_days_between_estimated(from, to);
            estimated_any |= n.estimated;
            outln!("{}{}", n.value, mark(n.estimated));
        }
        CalendarCommand::Is { dates } => {
            for d in dates {
                let w = cal.is_working_day_estimated(d);
                estimated_any |= w.estimated;
                outln!(
                    "{d}\t{}\t{}{}",
                    weekday_zh(d),
                    if w.value {
                        "工作日 working day"
                    } else {
                        "休息日 day off"
                    },
                    mark(w.estimated)
                );
            }
        }
    }
    if estimated_any {
        eprintln!(
            "warning: the holiday calendar covers {first}–{last}; dates outside are estimated from weekends alone (估算). Add the year's State Council notice with `calendar = \"holidays.toml\"` in the configuration (see the README)."
        );
    }
    Ok(0)
}

fn weekday_zh(d: chrono::NaiveDate) -> &'static str {
    use chrono::Datelike;
    [
        "星期一",
        "星期二",
        "星期三",
        "星期四",
        "星期五",
        "星期六",
        "星期日",
    ][d.weekday().num_days_from_monday() as usize]
}
