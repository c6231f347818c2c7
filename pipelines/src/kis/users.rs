//! KRX codes and US tickers users add at run time. KIS has no market list to publish, so an
//! id is taken on demand: the edge records a well-formed candidate (`stock.krx.<6 digits>`,
//! `stock.us.<ticker>`, [`super::candidate`]) in the `watched` bucket; this task follows the
//! bucket and checks each new one against KIS REST:
//!
//! - a KRX code: the current price (`inquire-price`); an error answer (`rt_cd` ≠ 0, e.g.
//!   `조회할 자료가 없습니다.`) or an empty one means KIS has no such stock. Its name is the
//!   daily chart's `hts_kor_isnm` (the price answer carries none), else the code;
//! - a US ticker: the price on NAS, NYS and AMS in turn; all-empty answers mean none of them
//!   lists it. KIS gives no name: the ticker.
//!
//! Found: it is listed (`listed` bucket, so every edge labels it and `GET /api/v1/instruments`
//! shows it), served like the others (a KRX stock on the socket if it fits, else polled; a US
//! stock polled), snapshotted and backfilled. Not found: it is rejected in the `watched` bucket
//! with the reason, so every edge answers `unknown_instrument`. A check that fails for another
//! reason (transport, rate limit, token) is retried with a capped backoff; the id stays a
//! candidate meanwhile (subscribable, no quote yet).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sise_bus::InstrumentId;
use tokio::time::Instant;

use super::parse::{self, ParseError};
use super::rest::RestError;
use super::{lock, Inst, Shared, Target, Venues, PROBE_VENUES};
use crate::Instrument;

/// What a check of one id found.
#[derive(Debug)]
pub(crate) enum Checked {
    /// KIS serves it: the instrument to list and what KIS calls it (US: with its venue).
    Found(Box<Instrument>, Target),
    /// KIS has no such code: why (shown to the user).
    Missing(String),
    /// The check itself failed (not an answer about the code): try again later.
    Failed(String),
}

/// First and longest wait before a failed check is tried again.
const RETRY_MIN: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// Follow the watched ids until cancelled; check and start each new one KIS could serve.
pub(crate) async fn run(sh: Arc<Shared>) {
    let cancel = sh.ctx.cancel.clone();
    let venues = Venues::builtin();
    let mut watched = crate::catalog::follow_watched(sh.ctx.bus.clone(), cancel.clone());
    // Ids settled here (served or rejected), and failed checks waiting for their retry.
    let mut done: HashSet<InstrumentId> = HashSet::new();
    let mut retry: BTreeMap<InstrumentId, (Instant, Duration)> = BTreeMap::new();
    loop {
        let now = Instant::now();
        let due: Vec<(InstrumentId, Target)> = watched
            .borrow_and_update()
            .iter()
            .filter(|id| !done.contains(*id))
            .filter(|id| retry.get(*id).is_none_or(|(at, _)| *at <= now))
            .filter(|id| super::candidate(id).is_some())
            .filter_map(|id| venues.target(id).map(|t| (id.clone(), t)))
            .collect();
        for (id, target) in due {
            if cancel.is_cancelled() {
                return;
            }
            match check(&sh, &id, &target).await {
                Checked::Found(inst, target) => {
                    retry.remove(&id);
                    done.insert(id.clone());
                    start(&sh, *inst, target).await;
                }
                Checked::Missing(why) => {
                    retry.remove(&id);
                    tracing::info!(source = "kis", instrument = %id, reason = %why, "user-added instrument rejected");
                    sh.ctx.registry.set_rejected(&id, Some(why.clone()));
                    match sh.ctx.bus.reject_watched(&id, &why).await {
                        Ok(()) => {
                            done.insert(id);
                        }
                        Err(e) => {
                            tracing::warn!(source = "kis", instrument = %id, error = %e, "could not record a rejection; retried");
                            retry.insert(id, (Instant::now() + RETRY_MIN, RETRY_MIN));
                        }
                    }
                }
                Checked::Failed(e) => {
                    let wait = retry
                        .get(&id)
                        .map_or(RETRY_MIN, |(_, w)| (*w * 2).min(RETRY_MAX));
                    tracing::warn!(source = "kis", instrument = %id, error = %e, retry_s = wait.as_secs(), "could not check a user-added instrument");
                    retry.insert(id, (Instant::now() + wait, wait));
                }
            }
        }
        let next = retry.values().map(|(at, _)| *at).min();
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = watched.changed() => if r.is_err() { return },
            _ = sleep_until(next) => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Whether a KIS error answer is about the code (KIS does not have it) rather than the call.
fn is_about_code(err: &parse::ApiError) -> bool {
    !err.is_token() && !err.is_rate_limit()
}

/// Ask KIS whether it serves `id`.
pub(crate) async fn check(sh: &Shared, id: &InstrumentId, target: &Target) -> Checked {
    let Some(mut inst) = super::candidate(id) else {
        return Checked::Missing(format!("{id} is not a KRX code or US ticker"));
    };
    match target {
        Target::KrxStock(code) => {
            match sh.rest.domestic_price(code).await {
                Ok(v) => match parse::domestic_price(&v) {
                    Ok(_) => {}
                    Err(ParseError::Empty) => {
                        return Checked::Missing(format!("KIS has no KRX stock {code}"))
                    }
                    Err(e) => return Checked::Missing(format!("KIS's answer for {code}: {e}")),
                },
                Err(RestError::Api { err, .. }) if is_about_code(&err) => {
                    let msg: String = err.message.chars().take(80).collect();
                    return Checked::Missing(format!("KIS has no KRX stock {code} ({msg})"));
                }
                Err(e) => return Checked::Failed(e.to_string()),
            }
            if let Some(name) = krx_name(sh, code).await {
                inst.name_ko = name;
            }
            Checked::Found(Box::new(inst), target.clone())
        }
        Target::UsStock { symbol, excd } => {
            let venues: Vec<&str> = match excd {
                Some(x) => vec![x.as_str()],
                None => PROBE_VENUES.to_vec(),
            };
            for x in venues {
                match sh.rest.overseas_price(x, symbol).await {
                    Ok(v) => match parse::overseas_price(&v, symbol) {
                        Ok(_) => {
                            tracing::info!(source = "kis", symbol = %symbol, excd = x, "US venue found");
                            lock(&sh.excd).insert(symbol.clone(), x.to_owned());
                            let target = Target::UsStock {
                                symbol: symbol.clone(),
                                excd: Some(x.to_owned()),
                            };
                            return Checked::Found(Box::new(inst), target);
                        }
                        Err(ParseError::Empty) => continue,
                        Err(e) => {
                            return Checked::Missing(format!("KIS's answer for {symbol}: {e}"))
                        }
                    },
                    Err(RestError::Api { err, .. }) if is_about_code(&err) => continue,
                    Err(e) => return Checked::Failed(e.to_string()),
                }
            }
            Checked::Missing(format!(
                "KIS has no US stock {symbol} on NASDAQ, NYSE or NYSE American"
            ))
        }
        _ => Checked::Missing(format!("{id} is not a KRX code or US ticker")),
    }
}

/// A KRX stock's Korean name: `hts_kor_isnm` of the daily chart (the last week).
async fn krx_name(sh: &Shared, code: &str) -> Option<String> {
    let today = super::local_date("krx", sise_bus::now_ms());
    let from = super::fmt_date(today - chrono::Duration::days(7));
    let v = sh
        .rest
        .domestic_daily(code, &from, &super::fmt_date(today))
        .await
        .ok()?;
    let name = v["output1"]["hts_kor_isnm"].as_str()?.trim();
    (!name.is_empty() && name.chars().count() <= 40).then(|| name.to_owned())
}

/// List a found instrument, serve it, take its snapshot and backfill its history.
async fn start(sh: &Arc<Shared>, listing: Instrument, target: Target) {
    let id = listing.id.clone();
    if let Err(e) = sh.ctx.registry.add_listed(listing.clone()) {
        tracing::warn!(source = "kis", instrument = %id, error = %e, "listing refused");
        return;
    }
    let json = crate::catalog::listing_json(&listing);
    if let Err(e) = sh.ctx.bus.put_listed_all(&[(id.clone(), json)]).await {
        // Served anyway; the next start lists it again.
        tracing::warn!(source = "kis", instrument = %id, error = %e, "could not list a user-added instrument");
    }
    let inst = Inst {
        id: id.clone(),
        target,
    };
    if !sh.add_inst(inst.clone()) {
        return; // served already (`SISE_KIS_SYMBOLS`): listed now, nothing else to start
    }
    tracing::info!(source = "kis", instrument = %id, name = %listing.name_ko, "user-added instrument served");
    // Where the log stands (an id added before a restart has history already).
    let since = match sh.ctx.bus.last_tick(&id).await {
        Ok(Some(t)) if t.source == sh.name => Some(t.ts),
        _ => None,
    };
    sh.poll(&[&inst]).await;
    sh.backfill(&inst, since).await;
    sh.report().await;
}
