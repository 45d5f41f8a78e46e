//! Whose turn it is, in the embedded queue (docs/ARCHITECTURE.md, "Fair sharing").
//!
//! Two tables, kept by triggers so that every group with a message has its rows — even
//! messages sent by an older darkroom sharing the database (a rolling upgrade), or moved to a
//! dead-letter queue: `tenant_turns` (queue, tenant, served) and `turns` (queue, tenant,
//! flow, served), where `served` is a logical clock per queue (0: never served). A receive
//! walks the tenants served longest ago first and stops at the first with a visible message,
//! then does the same with that tenant's flows, and takes the flow's oldest message; both
//! are then stamped with the queue's next tick. The walk skips only tenants and flows whose
//! messages are all in flight, so a receive costs about as many index probes as there are
//! such, not as many as there are groups. Rows of tenants and flows with no message left
//! are dropped on the way: one that comes back starts afresh, having waited for nobody.

use crate::MessageGroup;
use rusqlite::{params, OptionalExtension, Transaction};

/// Added to the schema (idempotent). The message index by tenant serves the walk's probes.
pub(crate) const TURNS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS turns (
    queue TEXT NOT NULL,
    tenant TEXT NOT NULL,
    flow TEXT NOT NULL,
    served INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, tenant, flow)
);
CREATE TABLE IF NOT EXISTS tenant_turns (
    queue TEXT NOT NULL,
    tenant TEXT NOT NULL,
    served INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, tenant)
);
CREATE INDEX IF NOT EXISTS tenant_turns_in_order ON tenant_turns (queue, served);
CREATE INDEX IF NOT EXISTS turns_in_order ON turns (queue, tenant, served);
";

/// Run once the messages table has its group columns (see `sqlite.rs`'s migration).
pub(crate) const TURNS_INDEXES_AND_TRIGGERS: &str = "
CREATE INDEX IF NOT EXISTS messages_by_group ON messages (queue, tenant, flow, visible_at_ms, id);
CREATE INDEX IF NOT EXISTS messages_by_tenant ON messages (queue, tenant, visible_at_ms);
INSERT OR IGNORE INTO turns (queue, tenant, flow, served) SELECT DISTINCT queue, tenant, flow, 0 FROM messages;
INSERT OR IGNORE INTO tenant_turns (queue, tenant, served) SELECT DISTINCT queue, tenant, 0 FROM messages;
DROP TRIGGER IF EXISTS a_sent_message_has_a_turn;
DROP TRIGGER IF EXISTS a_moved_message_has_a_turn;
CREATE TRIGGER IF NOT EXISTS a_sent_message_takes_turns AFTER INSERT ON messages BEGIN
    INSERT OR IGNORE INTO tenant_turns (queue, tenant, served) VALUES (NEW.queue, NEW.tenant, 0);
    INSERT OR IGNORE INTO turns (queue, tenant, flow, served) VALUES (NEW.queue, NEW.tenant, NEW.flow, 0);
END;
CREATE TRIGGER IF NOT EXISTS a_moved_message_takes_turns AFTER UPDATE OF queue ON messages BEGIN
    INSERT OR IGNORE INTO tenant_turns (queue, tenant, served) VALUES (NEW.queue, NEW.tenant, 0);
    INSERT OR IGNORE INTO turns (queue, tenant, flow, served) VALUES (NEW.queue, NEW.tenant, NEW.flow, 0);
END;
";

/// Rows read per step of a walk.
const PAGE: i64 = 32;

/// A visible message chosen to be received next.
pub(crate) struct Candidate {
    pub id: i64,
    pub message_id: String,
    pub body: String,
    pub attributes: String,
    pub receive_count: u32,
    pub group: MessageGroup,
}

/// Picks the next message in turn (see the module doc) and stamps its tenant and flow.
pub(crate) fn next_in_turn(
    transaction: &Transaction<'_>,
    queue: &str,
    now: i64,
) -> Result<Option<Candidate>, rusqlite::Error> {
    let Some(tenant) = first_ready_tenant(transaction, queue, now)? else {
        return oldest_without_turn(transaction, queue, now);
    };
    let Some(flow) = first_ready_flow(transaction, queue, &tenant, now)? else {
        return oldest_without_turn(transaction, queue, now);
    };
    let tick: i64 = transaction
        .prepare_cached("SELECT COALESCE(MAX(served), 0) + 1 FROM tenant_turns WHERE queue = ?1")?
        .query_row(params![queue], |row| row.get(0))?;
    transaction
        .prepare_cached("UPDATE tenant_turns SET served = ?3 WHERE queue = ?1 AND tenant = ?2")?
        .execute(params![queue, tenant, tick])?;
    transaction
        .prepare_cached("UPDATE turns SET served = ?4 WHERE queue = ?1 AND tenant = ?2 AND flow = ?3")?
        .execute(params![queue, tenant, flow, tick])?;
    let group = MessageGroup { tenant, flow };
    transaction
        .prepare_cached(
            "SELECT id, message_id, body, attributes, receive_count FROM messages
             WHERE queue = ?1 AND tenant = ?2 AND flow = ?3 AND visible_at_ms <= ?4 ORDER BY visible_at_ms, id LIMIT 1",
        )?
        .query_row(params![queue, group.tenant, group.flow, now], |row| candidate(row, group.clone()))
        .optional()
}

/// A candidate from a row of `id, message_id, body, attributes, receive_count`.
fn candidate(row: &rusqlite::Row<'_>, group: MessageGroup) -> Result<Candidate, rusqlite::Error> {
    Ok(Candidate {
        id: row.get(0)?,
        message_id: row.get(1)?,
        body: row.get(2)?,
        attributes: row.get(3)?,
        receive_count: row.get::<_, i64>(4)?.max(0) as u32,
        group,
    })
}

/// The tenant served longest ago that has a visible message.
fn first_ready_tenant(transaction: &Transaction<'_>, queue: &str, now: i64) -> Result<Option<String>, rusqlite::Error> {
    let mut after = (-1i64, -1i64);
    loop {
        let page: Vec<(i64, i64, String)> = transaction
            .prepare_cached(
                "SELECT served, rowid, tenant FROM tenant_turns WHERE queue = ?1 AND (served, rowid) > (?2, ?3)
                 ORDER BY served, rowid LIMIT ?4",
            )?
            .query_map(params![queue, after.0, after.1, PAGE], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let Some(last) = page.last() else { return Ok(None) };
        after = (last.0, last.1);
        for (_, _, tenant) in page {
            if has_message(transaction, queue, &tenant, None, Some(now))? {
                return Ok(Some(tenant));
            }
            if !has_message(transaction, queue, &tenant, None, None)? {
                transaction
                    .prepare_cached("DELETE FROM tenant_turns WHERE queue = ?1 AND tenant = ?2")?
                    .execute(params![queue, tenant])?;
                transaction
                    .prepare_cached("DELETE FROM turns WHERE queue = ?1 AND tenant = ?2")?
                    .execute(params![queue, tenant])?;
            }
        }
    }
}

/// The tenant's flow served longest ago that has a visible message.
fn first_ready_flow(
    transaction: &Transaction<'_>,
    queue: &str,
    tenant: &str,
    now: i64,
) -> Result<Option<String>, rusqlite::Error> {
    let mut after = (-1i64, -1i64);
    loop {
        let page: Vec<(i64, i64, String)> = transaction
            .prepare_cached(
                "SELECT served, rowid, flow FROM turns WHERE queue = ?1 AND tenant = ?2 AND (served, rowid) > (?3, ?4)
                 ORDER BY served, rowid LIMIT ?5",
            )?
            .query_map(params![queue, tenant, after.0, after.1, PAGE], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let Some(last) = page.last() else { return Ok(None) };
        after = (last.0, last.1);
        for (_, _, flow) in page {
            if has_message(transaction, queue, tenant, Some(&flow), Some(now))? {
                return Ok(Some(flow));
            }
            if !has_message(transaction, queue, tenant, Some(&flow), None)? {
                transaction
                    .prepare_cached("DELETE FROM turns WHERE queue = ?1 AND tenant = ?2 AND flow = ?3")?
                    .execute(params![queue, tenant, flow])?;
            }
        }
    }
}

/// Whether the tenant (or one of its flows) has a message in the queue: any, or visible by `now`.
fn has_message(
    transaction: &Transaction<'_>,
    queue: &str,
    tenant: &str,
    flow: Option<&str>,
    visible_by: Option<i64>,
) -> Result<bool, rusqlite::Error> {
    let visible_by = visible_by.unwrap_or(i64::MAX);
    match flow {
        Some(flow) => transaction
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE queue = ?1 AND tenant = ?2 AND flow = ?3 AND visible_at_ms <= ?4)",
            )?
            .query_row(params![queue, tenant, flow, visible_by], |row| row.get(0)),
        None => transaction
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM messages WHERE queue = ?1 AND tenant = ?2 AND visible_at_ms <= ?3)")?
            .query_row(params![queue, tenant, visible_by], |row| row.get(0)),
    }
}

/// A safety net: a visible message whose group has no turn (which the triggers never
/// leave) is still delivered, oldest first, and its group gets its turns again.
fn oldest_without_turn(
    transaction: &Transaction<'_>,
    queue: &str,
    now: i64,
) -> Result<Option<Candidate>, rusqlite::Error> {
    let candidate = transaction
        .prepare_cached(
            "SELECT id, message_id, body, attributes, receive_count, tenant, flow FROM messages
             WHERE queue = ?1 AND visible_at_ms <= ?2 ORDER BY visible_at_ms, id LIMIT 1",
        )?
        .query_row(params![queue, now], |row| candidate(row, MessageGroup { tenant: row.get(5)?, flow: row.get(6)? }))
        .optional()?;
    if let Some(candidate) = &candidate {
        let (tenant, flow) = (&candidate.group.tenant, &candidate.group.flow);
        transaction
            .prepare_cached("INSERT OR IGNORE INTO tenant_turns (queue, tenant, served) VALUES (?1, ?2, 0)")?
            .execute(params![queue, tenant])?;
        transaction
            .prepare_cached("INSERT OR IGNORE INTO turns (queue, tenant, flow, served) VALUES (?1, ?2, ?3, 0)")?
            .execute(params![queue, tenant, flow])?;
    }
    Ok(candidate)
}
