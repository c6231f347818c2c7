//! Poll schedules of the REST sources, run by tokio-cron-scheduler: cron expressions in a
//! fixed-offset time zone (Eximbank: weekdays at fixed KST times) or a fixed interval (gold).
//!
//! A job only signals the source's own loop through a channel of one slot (fires that pile up
//! while a poll runs collapse into one), so the loop keeps its state, its backoff and its
//! cancellation in one place and the scheduler never runs source code itself.

use std::time::Duration;

use chrono::FixedOffset;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};

/// A running schedule; [`Schedule::fired`] resolves at each fire.
pub struct Schedule {
    sched: JobScheduler,
    rx: mpsc::Receiver<()>,
}

fn err(what: &str, e: impl std::fmt::Debug) -> String {
    format!("schedule: {what}: {e:?}")
}

impl Schedule {
    /// Cron expressions with seconds (`"0 5,30 11 * * Mon-Fri"`) at `offset`.
    pub async fn cron(expressions: &[String], offset: FixedOffset) -> Result<Self, String> {
        let (tx, rx) = mpsc::channel(1);
        let sched = JobScheduler::new().await.map_err(|e| err("start", e))?;
        for expr in expressions {
            let tx = tx.clone();
            let job = Job::new_async_tz(expr.as_str(), offset, move |_, _| {
                let _ = tx.try_send(());
                Box::pin(async {})
            })
            .map_err(|e| err(expr, e))?;
            sched.add(job).await.map_err(|e| err("add", e))?;
        }
        sched.start().await.map_err(|e| err("start", e))?;
        Ok(Schedule { sched, rx })
    }

    /// Every `interval`.
    pub async fn every(interval: Duration) -> Result<Self, String> {
        let (tx, rx) = mpsc::channel(1);
        let sched = JobScheduler::new().await.map_err(|e| err("start", e))?;
        let job = Job::new_repeated_async(interval, move |_, _| {
            let _ = tx.try_send(());
            Box::pin(async {})
        })
        .map_err(|e| err("interval", e))?;
        sched.add(job).await.map_err(|e| err("add", e))?;
        sched.start().await.map_err(|e| err("start", e))?;
        Ok(Schedule { sched, rx })
    }

    /// The next fire (pending forever if the scheduler is gone).
    pub async fn fired(&mut self) {
        if self.rx.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }

    /// Stop the scheduler's tasks.
    pub async fn stop(mut self) {
        if let Err(e) = self.sched.shutdown().await {
            tracing::debug!(error = ?e, "schedule shutdown");
        }
    }
}

/// Cron expressions for weekday poll times `(hour, minute)`.
pub fn weekday_times(times: &[(u32, u32)]) -> Vec<String> {
    times
        .iter()
        .map(|(h, m)| format!("0 {m} {h} * * Mon-Fri"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cron_and_interval_schedules_start_and_fire() {
        let kst = FixedOffset::east_opt(9 * 3600).unwrap();
        let exprs = weekday_times(&[(11, 5), (15, 0)]);
        assert_eq!(exprs[0], "0 5 11 * * Mon-Fri");
        Schedule::cron(&exprs, kst).await.unwrap().stop().await;
        assert!(Schedule::cron(&["not cron".into()], kst).await.is_err());
        let mut s = Schedule::every(Duration::from_secs(1)).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), s.fired())
            .await
            .expect("an interval fire");
        s.stop().await;
    }
}
