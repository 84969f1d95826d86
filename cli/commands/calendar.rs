//! `xinyong calendar`: the State Council working-day calendar — the N-th working day
//! after a date, working days between two dates, whether a date is a working day.

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
pub fn calendar(command: CalendarCommand) -> anyhow::Result<i32> {
    let cal = Calendar::built_in();
    match command {
        CalendarCommand::Deadline { date, working_days } => {
            let d = cal.add_working_days(date, working_days)?;
            println!(
                "{d}\t{} ({working_days} working days after {date}, which is not counted)",
                weekday_zh(d)
            );
        }
        CalendarCommand::Between { from, to } => {
            println!("{}", cal.working_days_between(from, to)?);
        }
        CalendarCommand::Is { dates } => {
            for d in dates {
                let w = cal.is_working_day(d)?;
                println!(
                    "{d}\t{}\t{}",
                    weekday_zh(d),
                    if w {
                        "工作日 working day"
                    } else {
                        "休息日 day off"
                    }
                );
            }
        }
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
