//! The governance reports as CSV (SPEC §2 `governance`): one row per access, in the order
//! recorded, for a Privacy Officer's spreadsheet. The same rows come from the API
//! (`AuditEvent?…&_format=csv`, streamed) and from `cpis report` (written from the database).
//!
//! A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a formula (and some read
//! a leading tab or carriage return the same way): such a value is written with a leading `'`,
//! which spreadsheets show as text (OWASP "CSV injection").

use chrono::{Datelike, Offset, TimeZone, Timelike};
use chrono_tz::Europe::London;

use crate::db::audit::StoredAccess;

/// The header row.
pub const HEADER: [&str; 10] = [
    "time_uk",
    "nhs_number",
    "care_setting",
    "user_id",
    "user_name",
    "job_role",
    "job_role_code",
    "organisation_code",
    "organisation_name",
    "interaction",
];

/// Accesses read and written per chunk: a report of any size holds one chunk in memory.
pub const CHUNK: i64 = 2000;

/// The media type of a report.
pub const CSV_MEDIA_TYPE: &str = "text/csv; charset=utf-8";

/// A value as a spreadsheet may safely show it.
pub fn defused(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_string(),
    }
}

/// When an access was recorded, in UK time (`2026-11-03 14:05:12 GMT`, BST in summer). Written
/// field by field: a report formats a million of these, and a format string is parsed per call.
fn uk_time(recorded_ms: i64) -> String {
    let Some(utc) = chrono::DateTime::from_timestamp_millis(recorded_ms) else {
        return String::new();
    };
    let offset = London.offset_from_utc_datetime(&utc.naive_utc()).fix();
    let local = utc.naive_utc() + offset;
    let zone = if offset.local_minus_utc() == 0 {
        "GMT"
    } else {
        "BST"
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {zone}",
        local.year(),
        local.month(),
        local.day(),
        local.hour(),
        local.minute(),
        local.second()
    )
}

/// One access as a row of the report.
pub fn row(access: &StoredAccess) -> [String; 10] {
    let text = |value: Option<&str>| defused(value.unwrap_or_default());
    [
        uk_time(access.recorded_ms),
        defused(&access.nhs_number),
        defused(&access.care_setting),
        defused(&access.agent_sub),
        text(access.agent_name.as_deref()),
        text(access.job_role.as_deref()),
        text(access.job_role_code.as_deref()),
        defused(&access.agent_org),
        text(access.org_name.as_deref()),
        defused(&access.interaction),
    ]
}

/// Rows as CSV bytes (RFC 4180 quoting), the header first when `header`.
pub fn csv_bytes(accesses: &[StoredAccess], header: bool) -> Result<Vec<u8>, String> {
    let mut out = csv::Writer::from_writer(Vec::with_capacity(accesses.len() * 160 + 128));
    if header {
        out.write_record(HEADER).map_err(|e| e.to_string())?;
    }
    for access in accesses {
        out.write_record(row(access)).map_err(|e| e.to_string())?;
    }
    out.into_inner().map_err(|e| e.to_string())
}

/// The key to continue a report after this chunk: its last access's instant and seq.
pub fn resume_after(chunk: &[StoredAccess]) -> Option<(i64, i64)> {
    chunk.last().map(|a| (a.recorded_ms, a.seq))
}

/// Writes a whole report to `out`, a chunk at a time from `next_chunk` (given where to resume),
/// ticking `progress` per access; returns how many rows were written.
pub fn write_report<W: std::io::Write>(
    out: W,
    mut next_chunk: impl FnMut(Option<(i64, i64)>) -> Result<Vec<StoredAccess>, String>,
    progress: &indicatif::ProgressBar,
) -> Result<u64, String> {
    let mut out = csv::Writer::from_writer(out);
    out.write_record(HEADER).map_err(|e| e.to_string())?;
    let mut after = None;
    let mut written = 0u64;
    loop {
        let chunk = next_chunk(after)?;
        for access in &chunk {
            out.write_record(row(access)).map_err(|e| e.to_string())?;
        }
        let n = chunk.len() as u64;
        written += n;
        progress.inc(n);
        if i64::try_from(chunk.len()).unwrap_or(i64::MAX) < CHUNK {
            break;
        }
        after = resume_after(&chunk);
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(job_role: &str) -> StoredAccess {
        StoredAccess {
            seq: 7,
            id: "a-1".into(),
            recorded_ms: 1_783_000_000_000, // 2 July 2026, BST
            nhs_number: "9449306753".into(),
            agent_sub: "555021935107".into(),
            agent_org: "RJ1".into(),
            care_setting: "unscheduled".into(),
            accessor_role: "health-care".into(),
            interaction: "search-type".into(),
            agent_name: Some("Jane Smith".into()),
            org_name: Some("St Thomas', \"Lambeth\"".into()),
            job_role: Some(job_role.into()),
            ..StoredAccess::default()
        }
    }

    #[test]
    fn uk_time_is_gmt_in_winter_and_bst_in_summer_either_side_of_the_changes() {
        for (ms, expected) in [
            (1_774_745_999_000, "2026-03-29 00:59:59 GMT"), // the last second of GMT
            (1_774_746_000_000, "2026-03-29 02:00:00 BST"), // clocks go forward
            (1_792_889_999_000, "2026-10-25 01:59:59 BST"),
            (1_792_890_000_000, "2026-10-25 01:00:00 GMT"), // clocks go back
        ] {
            assert_eq!(uk_time(ms), expected);
            let by_format = London
                .timestamp_millis_opt(ms)
                .unwrap()
                .format("%Y-%m-%d %H:%M:%S %Z")
                .to_string();
            assert_eq!(uk_time(ms), by_format);
        }
    }

    #[test]
    fn a_formula_is_written_as_text() {
        for hostile in [
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-2",
            "@SUM(A1)",
            "\tx",
            "\rx",
        ] {
            assert_eq!(defused(hostile), format!("'{hostile}"));
        }
        assert_eq!(defused("Staff Nurse"), "Staff Nurse");
        assert_eq!(defused(""), "");
    }

    #[test]
    fn a_row_is_quoted_in_uk_time_with_its_header() {
        let bytes = csv_bytes(&[access("=HYPERLINK(\"http://evil\",\"x\")")], true).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), HEADER.join(","));
        let line = lines.next().unwrap();
        assert!(line.starts_with("2026-07-02 "), "{line}");
        assert!(line.contains(" BST,9449306753,unscheduled,555021935107,Jane Smith,"));
        assert!(
            line.contains(",\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\","),
            "{line}"
        );
        assert!(line.contains(",\"St Thomas', \"\"Lambeth\"\"\","), "{line}");
        assert_eq!(resume_after(&[access("x")]), Some((1_783_000_000_000, 7)));
    }
}
