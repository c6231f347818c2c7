//! `sise replay --instrument ID --from T --to T [--republish PREFIX] [--format ndjson|table]`:
//! print a past range of the log for debugging, or re-publish it under another subject prefix
//! (backfilling another namespace). Reads JetStream directly, like the REST and WebSocket replay.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDateTime, TimeZone};
use futures::StreamExt;
use sise_bus::replay::{replay_ticks, republish_subject, ReplaySpec, ReplayedTick};
use sise_bus::{Bus, InstrumentId};

use crate::config::Config;

/// Output format of `sise replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON event a line, exactly as `GET /api/v1/replay` answers.
    Ndjson,
    /// A table for people: KST time, price, change, volume, source, stream sequence.
    Table,
}

/// The arguments of `sise replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Instrument id(s), comma separated (e.g. crypto.upbit.KRW-BTC).
    #[arg(long, value_delimiter = ',', required = true)]
    pub instrument: Vec<String>,
    /// Start (inclusive): Unix epoch ms, RFC 3339 (2026-03-12T09:00:00+09:00) or KST
    /// local time (2026-03-12 09:00[:00]).
    #[arg(long, value_parser = parse_time)]
    pub from: i64,
    /// End (exclusive), same forms as --from.
    #[arg(long, value_parser = parse_time)]
    pub to: i64,
    /// Re-publish every tick of the range to `<PREFIX>.tick.<id>` (same dedup id) instead of
    /// printing it. When PREFIX is a namespace, its streams are created if missing.
    #[arg(long, value_name = "SUBJECT_PREFIX")]
    pub republish: Option<String>,
    /// How to print the range.
    #[arg(long, value_enum, default_value_t = Format::Ndjson)]
    pub format: Format,
}

/// Parse a time: epoch ms, RFC 3339, or a KST wall-clock time.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            if let Some(t) = chrono_tz::Asia::Seoul.from_local_datetime(&naive).single() {
                return Ok(t.timestamp_millis());
            }
        }
    }
    Err(format!(
        "expected epoch ms, RFC 3339 or KST 'YYYY-MM-DD HH:MM[:SS]', got {s:?}"
    ))
}

fn kst(ms: i64) -> String {
    chrono::Utc
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| {
            t.with_timezone(&chrono_tz::Asia::Seoul)
                .format("%Y-%m-%d %H:%M:%S%.3f")
                .to_string()
        })
        .unwrap_or_else(|| ms.to_string())
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_else(|| "-".into())
}

fn table_row(out: &mut impl Write, r: &ReplayedTick) -> std::io::Result<()> {
    let t = &r.tick;
    writeln!(
        out,
        "{:<23}  {:<24} {:>16} {:>12} {:>9} {:>14} {:<10} {:>10}{}",
        kst(t.ts),
        t.instrument.as_str(),
        t.price,
        opt(t.change),
        t.change_rate
            .map(|c| format!("{:+.2}%", c * 100.0))
            .unwrap_or_else(|| "-".into()),
        t.volume,
        t.source.as_str(),
        r.seq,
        if t.backfill { "  backfill" } else { "" }
    )
}

/// Run `sise replay`: returns how many ticks were printed or re-published.
pub async fn run(config: &Config, args: &ReplayArgs) -> anyhow::Result<u64> {
    let mut ids = Vec::new();
    for raw in &args.instrument {
        let id = InstrumentId::parse(raw.trim()).with_context(|| format!("--instrument {raw}"))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        bail!("--instrument: at least one id");
    }
    if args.from > args.to {
        bail!("--from ({}) is after --to ({})", args.from, args.to);
    }
    let bus = Bus::connect(&config.nats_url, config.namespace.clone())
        .await
        .context("connecting to NATS (SISE_NATS_URL)")?;
    let spec = ReplaySpec {
        ids,
        from: args.from,
        to: args.to,
        slack: Duration::from_secs(config.replay_slack_secs),
    };
    let mut ticks = replay_ticks(&bus, &spec).await?;
    let started = Instant::now();
    let mut count = 0u64;
    match &args.republish {
        Some(prefix) => {
            // Validate before anything is sent.
            republish_subject(prefix, &spec.ids[0])?;
            if let Some(target) = sise_bus::replay::prefix_namespace(prefix) {
                let other = Bus::from_client(bus.client.clone(), target);
                let max_age = Duration::from_secs(u64::from(config.ticks_max_age_days) * 86_400);
                other.ensure_streams(max_age).await?;
            }
            let mut acks = Vec::with_capacity(1024);
            let mut duplicates = 0u64;
            while let Some(r) = ticks.next().await {
                let r = r?;
                let subject = republish_subject(prefix, &r.tick.instrument)?;
                acks.push(bus.send(subject, &r.tick.msg_id(), r.payload).await?);
                count += 1;
                if acks.len() >= 1024 {
                    for a in acks.drain(..) {
                        duplicates +=
                            u64::from(a.await.map_err(|e| anyhow::anyhow!("{e}"))?.duplicate);
                    }
                }
            }
            for a in acks.drain(..) {
                duplicates += u64::from(a.await.map_err(|e| anyhow::anyhow!("{e}"))?.duplicate);
            }
            eprintln!(
                "re-published {} ticks to {prefix}.tick.* ({} already there) in {:.2} s",
                crate::rebuild::thousands(count),
                crate::rebuild::thousands(duplicates),
                started.elapsed().as_secs_f64()
            );
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
            if args.format == Format::Table {
                writeln!(
                    out,
                    "{:<23}  {:<24} {:>16} {:>12} {:>9} {:>14} {:<10} {:>10}",
                    "time (KST)",
                    "instrument",
                    "price",
                    "change",
                    "rate",
                    "volume",
                    "source",
                    "seq"
                )?;
            }
            let mut line = Vec::with_capacity(512);
            while let Some(r) = ticks.next().await {
                let r = r?;
                match args.format {
                    Format::Ndjson => {
                        line.clear();
                        crate::edge::replay::write_line(&mut line, &r);
                        out.write_all(&line)?;
                    }
                    Format::Table => table_row(&mut out, &r)?,
                }
                count += 1;
            }
            out.flush()?;
            eprintln!(
                "{} ticks in [{}, {}) KST, {:.2} s",
                crate::rebuild::thousands(count),
                kst(args.from),
                kst(args.to),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1773293415000").unwrap(), 1_773_293_415_000);
        // 2026-03-12 14:30:15 KST = 05:30:15 UTC.
        assert_eq!(
            parse_time("2026-03-12T14:30:15+09:00").unwrap(),
            1_773_293_415_000
        );
        assert_eq!(
            parse_time("2026-03-12 14:30:15").unwrap(),
            1_773_293_415_000
        );
        assert_eq!(parse_time("2026-03-12 14:30").unwrap(), 1_773_293_400_000);
        assert!(parse_time("yesterday").is_err());
    }
}
