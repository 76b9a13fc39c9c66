//! The SRS maintenance schedule (srs.md "Archive and retention", operations.md
//! "Runtime behaviour"): every day at `srs.maintenance_time_utc` the seasons with
//! `auto_archive`, not active and ended before today (UTC) are archived; every week on
//! `srs.retention_weekday` at the same time the retention cutoff is raised. Runs are
//! recorded as the periodic tasks `srs_auto_archive` and `srs_retention` (`GET
//! /api/v1/admin/engine`).
//!
//! The task looks at the engine's clock every `srs.maintenance_poll_ms` and runs each
//! job whose latest scheduled instant has not been run by this process yet — so a run
//! missed while the server was down happens right after start, and a fake clock moved
//! past a slot triggers it at the next look. Both jobs are idempotent.
//!
//! Degraded mode (engine/degraded.rs): while writes are refused the task does not run
//! the jobs, and a slot whose run failed for lack of storage stays due, so the job runs
//! again at the first look after storage is back — never skipped silently until the
//! next day.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;

use super::Engine;

/// The latest daily and weekly slots at or before `now` (UTC ms).
#[must_use]
pub fn latest_slots(now: Timestamp, at: Time, weekday: Weekday) -> (i64, i64) {
    let utc = now.to_zoned(TimeZone::UTC);
    let today = utc.date();
    let slot = |d: Date| {
        d.to_datetime(at)
            .to_zoned(TimeZone::UTC)
            .map_or(i64::MIN, |z| z.timestamp().as_millisecond())
    };
    let now_ms = now.as_millisecond();
    let daily = if slot(today) <= now_ms {
        slot(today)
    } else {
        today.yesterday().map_or(i64::MIN, slot)
    };
    let mut day = today;
    let weekly = loop {
        if day.weekday() == weekday && slot(day) <= now_ms {
            break slot(day);
        }
        match day.yesterday() {
            Ok(d) => day = d,
            Err(_) => break i64::MIN,
        }
    };
    (daily, weekly)
}

impl Engine {
    /// Runs the maintenance schedule until `shutdown` changes.
    pub async fn run_srs_maintenance(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.config().srs.maintenance_poll_ms.max(10));
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            tokio::select! {
                () = self.srs_maintenance_step() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// One look at the clock: runs the daily auto-archive and the weekly flagging if
    /// their latest slot has not been run. Work runs in tasks of its own, so dropping
    /// this future (at shutdown) never cuts a write in half.
    pub async fn srs_maintenance_step(&self) {
        let settings = &self.config().srs;
        let (Ok(at), Ok(weekday)) = (settings.maintenance_time(), settings.retention_weekday())
        else {
            return;
        };
        let (daily, weekly) = latest_slots(self.now(), at, weekday);
        let slots = *self.inner().srs.archive.slots.lock();
        if (slots.daily != Some(daily) || slots.weekly != Some(weekly)) && self.is_degraded() {
            tracing::debug!("SRS maintenance postponed: storage is degraded");
            return;
        }
        if slots.daily != Some(daily) && self.auto_archive().await {
            self.inner().srs.archive.slots.lock().daily = Some(daily);
        }
        if slots.weekly != Some(weekly) {
            let engine = self.clone();
            let started_ms = self.now().as_millisecond();
            let started = Instant::now();
            let outcome = tokio::spawn(async move { engine.flag_retention().await }).await;
            let result = match outcome {
                Ok(Ok(f)) => Ok(format!(
                    "{} archived cards eligible for deletion (archived before {})",
                    f.eligible_cards,
                    super::accounts::rfc3339(f.eligible_before_ms)
                )),
                Ok(Err(e)) => Err(e.detail),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = &result {
                tracing::error!(error = %e, "retention flagging failed");
            }
            let ok = result.is_ok();
            self.jobs()
                .record_run("srs_retention", started_ms, started.elapsed(), result);
            if ok {
                self.inner().srs.archive.slots.lock().weekly = Some(weekly);
            }
        }
    }

    /// The daily job: archives every season with `auto_archive`, not active, whose
    /// `end_date` is before today (UTC) and that still has live cards, one job each.
    /// Returns `false` when a season could not be archived for lack of storage
    /// (degraded mode): the slot stays due and the job runs again.
    async fn auto_archive(&self) -> bool {
        let started_ms = self.now().as_millisecond();
        let started = Instant::now();
        let today = self.now().to_zoned(TimeZone::UTC).date();
        let due: Vec<String> = self
            .seasons()
            .into_iter()
            .filter(|s| {
                s.auto_archive
                    && !s.is_active
                    && s.end_date.parse::<Date>().is_ok_and(|end| end < today)
            })
            .map(|s| s.id)
            .collect();
        let mut done = Vec::new();
        let mut failed = Vec::new();
        let mut storage_failed = false;
        for season in due {
            let engine = self.clone();
            let of = season.clone();
            let live = tokio::task::spawn_blocking(move || engine.live_cards(&of)).await;
            if !matches!(live, Ok(Ok(n)) if n > 0) {
                continue;
            }
            let ticket = match self.begin_archive(&season).await {
                Ok(t) => t,
                Err(e) if e.code == crate::error::Code::StorageUnavailable => {
                    storage_failed = true;
                    failed.push(format!("{season}: {}", e.detail));
                    continue;
                }
                // Running already (a manual archive), or activated meanwhile.
                Err(e) => {
                    tracing::info!(season, reason = %e.detail, "auto-archive skipped");
                    continue;
                }
            };
            let engine = self.clone();
            let view = self.jobs().spawn("archive", "", move |handle| async move {
                engine
                    .run_archive(ticket, Some(handle))
                    .await
                    .map(super::jobs::JobOutput::of)
            });
            let finished = self
                .jobs()
                .wait(&view.id, Duration::from_secs(7 * 24 * 3600))
                .await;
            match finished {
                Ok(v) if v.state == super::jobs::JobState::Done => {
                    done.push(format!("{season}: {}", v.result["archived_cards"]));
                }
                Ok(v) => {
                    storage_failed |= v
                        .error
                        .as_ref()
                        .is_some_and(|e| e.code == crate::error::Code::StorageUnavailable);
                    let why = v.error.map(|e| e.detail).unwrap_or_default();
                    tracing::error!(season, error = %why, "auto-archive failed");
                    failed.push(format!("{season}: {why}"));
                }
                Err(e) => failed.push(format!("{season}: {}", e.detail)),
            }
        }
        let summary = if done.is_empty() {
            "no season to archive".to_owned()
        } else {
            format!("archived {}", done.join(", "))
        };
        let result = if failed.is_empty() {
            Ok(summary)
        } else {
            Err(format!("{summary}; failed {}", failed.join(", ")))
        };
        self.jobs()
            .record_run("srs_auto_archive", started_ms, started.elapsed(), result);
        !storage_failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn slots_are_the_latest_scheduled_instants() {
        let at = Time::constant(2, 0, 0, 0);
        // Saturday 2026-11-21 09:00 UTC: today's 02:00; last Sunday 2026-11-15 02:00.
        let (d, w) = latest_slots(ts("2026-11-21T09:00:00Z"), at, Weekday::Sunday);
        assert_eq!(d, ts("2026-11-21T02:00:00Z").as_millisecond());
        assert_eq!(w, ts("2026-11-15T02:00:00Z").as_millisecond());
        // Before 02:00: yesterday's slot; on Sunday before 02:00, the previous Sunday.
        let (d, w) = latest_slots(ts("2026-11-22T01:59:59Z"), at, Weekday::Sunday);
        assert_eq!(d, ts("2026-11-21T02:00:00Z").as_millisecond());
        assert_eq!(w, ts("2026-11-15T02:00:00Z").as_millisecond());
        let (d, w) = latest_slots(ts("2026-11-22T02:00:00Z"), at, Weekday::Sunday);
        assert_eq!(d, ts("2026-11-22T02:00:00Z").as_millisecond());
        assert_eq!(w, d);
    }
}
