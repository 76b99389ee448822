//! Schedules: when a job fires. Their text form (`every 10m`,
//! `at 2026-12-24T18:00:00Z`, `cron 0 8 * * mon-fri tz +01:00`), and the
//! first fire time after an instant, [`Schedule::next_after`].
//!
//! Pure arithmetic: the calendar is Howard Hinnant's `days_from_civil` and
//! `civil_from_days` (proleptic Gregorian, any year), written here rather
//! than taken from a crate, for size. A cron spec is five bit sets, and the
//! next fire time is found by skipping whole months, days and hours that
//! cannot match, never minute by minute.
//!
//! Time zones are UTC or a fixed offset ([`Zone`]). Named IANA zones
//! (`Europe/Berlin`) are not supported: their daylight-saving rules need the
//! zone database, which a `FROM scratch` image does not have and which would
//! not fit the 3 MiB binary. A job at 08:00 in a zone with DST is written
//! with its winter or its summer offset, and moves by an hour in the other
//! half of the year.
//!
//! Must not: read the clock, sleep, or spawn anything (that is the rest of
//! `jobs`, #16); every instant comes from the caller.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days in one Gregorian cycle: the calendar, weekdays included, repeats
/// every 400 years (146,097 days are exactly 20,871 weeks), so a cron spec
/// that has not fired within 400 years never will.
const DAYS_400Y: i64 = 146_097;
/// The largest fixed offset we accept, as ISO 8601 does: ±18 hours.
const MAX_OFFSET: i32 = 18 * 3600;
/// Whole days and minutes, in seconds and minutes.
const SECS_PER_DAY: i64 = 86_400;
const MINUTES_PER_DAY: i64 = 1_440;

/// When a job fires.
///
/// Its text form, read by [`Schedule::parse`] and given back by `Display`
/// (and by serde, as a string):
/// - `every 90s`, `every 10m`, `every 2h`, `every 1d`, `every 1h30m`: an
///   interval (units `d`, `h`, `m`, `s`, `ms`, `us`, `ns`), at least 1 s;
/// - `at 2026-12-24T18:00:00Z`, `at 2026-12-24T18:00:00+01:00`: an instant,
///   RFC 3339 with seconds, optional fraction; shown back in UTC;
/// - `cron 0 8 * * mon-fri`, `cron @daily`, `cron 0 8 * * * tz +05:30`:
///   a [`Cron`] spec, in UTC unless ` tz <zone>` follows ([`Zone::parse`]).
///
/// # Examples
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use smolgram::jobs::Schedule;
///
/// let s: Schedule = "cron 0 8 * * mon-fri tz +01:00".parse().unwrap();
/// // Friday 2026-12-25 09:00 UTC, 1,798,189,200 s after the epoch.
/// let friday = UNIX_EPOCH + Duration::from_secs(1_798_189_200);
/// // Monday 08:00 at +01:00 is 07:00 UTC, three days less two hours later.
/// let monday = friday + Duration::from_secs(3 * 86_400 - 2 * 3600);
/// assert_eq!(s.next_after(friday), Some(monday));
/// assert_eq!(s.to_string(), "cron 0 8 * * mon-fri tz +01:00");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Every interval (at least 1 s), counted from an anchor the caller keeps.
    Every(Duration),
    /// Once, at an instant.
    Once(SystemTime),
    /// On the minutes a cron spec names, in its zone.
    Cron(Cron),
}

impl Schedule {
    /// Reads the text form (see [`Schedule`]); surrounding whitespace and the
    /// case of the keywords do not matter.
    pub fn parse(spec: &str) -> Result<Schedule, ScheduleError> {
        let spec = spec.trim();
        let (keyword, rest) = spec.split_once(char::is_whitespace).unwrap_or((spec, ""));
        let rest = rest.trim();
        match keyword.to_ascii_lowercase().as_str() {
            "" => Err(err(
                "empty schedule; expected `every …`, `at …` or `cron …`",
            )),
            "every" => parse_every(rest).map(Schedule::Every),
            "at" => parse_instant(rest).map(Schedule::Once),
            "cron" => parse_cron_with_zone(rest).map(Schedule::Cron),
            other => Err(err(format!(
                "unknown schedule kind \"{other}\"; expected `every …`, `at …` or `cron …`"
            ))),
        }
    }

    /// The first fire time strictly after `after`, or `None` if there is none.
    ///
    /// - `Every(interval)`: `after + interval`. The schedule keeps no anchor:
    ///   the caller passes the last fire time (or the job's start) as `after`,
    ///   so runs do not drift with the time a job takes. A zero interval (only
    ///   possible when built by hand) is `None`.
    /// - `Once(at)`: `at` if it is after `after`, else `None`.
    /// - `Cron(cron)`: [`Cron::next_after`].
    ///
    /// `None` too when the answer would not fit in a `SystemTime`.
    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        match self {
            Schedule::Every(interval) if interval.is_zero() => None,
            Schedule::Every(interval) => after.checked_add(*interval),
            Schedule::Once(at) => (*at > after).then_some(*at),
            Schedule::Cron(cron) => cron.next_after(after),
        }
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;
    fn from_str(spec: &str) -> Result<Schedule, ScheduleError> {
        Schedule::parse(spec)
    }
}

/// The canonical text: [`Schedule::parse`] reads it back to an equal
/// schedule. An instant is shown in UTC; one outside the years 0000–9999
/// has no RFC 3339 form and does not read back, nor does an interval under
/// 1 s (both only possible when built by hand).
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Every(interval) => write!(f, "every {}", DurationText(*interval)),
            Schedule::Once(at) => write!(f, "at {}", InstantText(*at)),
            Schedule::Cron(cron) if cron.zone == Zone::Utc => write!(f, "cron {cron}"),
            Schedule::Cron(cron) => write!(f, "cron {cron} tz {}", cron.zone),
        }
    }
}

impl serde::Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Schedule, D::Error> {
        let text = String::deserialize(deserializer)?;
        Schedule::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A cron spec: minute, hour, day of month, month, day of week, in a zone.
///
/// Each field is `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or
/// a list of those, `a,b-c,*/n`. Months may be named `jan`–`dec`, days of
/// the week `sun`–`sat` (any case); a day of the week is 0–7, where 0 and 7
/// are both Sunday. The shorthands: `@hourly` (`0 * * * *`), `@daily` and
/// `@midnight` (`0 0 * * *`), `@weekly` (`0 0 * * 0`), `@monthly`
/// (`0 0 1 * *`), `@yearly` and `@annually` (`0 0 1 1 *`).
///
/// Days follow Vixie cron: when both the day-of-month and the day-of-week
/// fields are restricted, a day matches if *either* does (`0 0 13 * fri`
/// fires on every 13th and every Friday); otherwise it must match both. As
/// in Vixie cron, a field counts as unrestricted when it starts with `*`,
/// so `*/2` is too: `0 0 */2 * mon` fires on odd-numbered days that are
/// Mondays.
///
/// A spec that can never fire, because its days of the month do not exist
/// in its months (`0 0 30 2 *`), is refused by [`Cron::parse`].
///
/// Two specs are equal when they fire at the same minutes in the same zone
/// (`1-5` and `mon-fri` are equal); `Display` gives back the spec as it was
/// written, in lower case.
#[derive(Clone, Debug)]
pub struct Cron {
    minutes: u64, // bits 0..=59
    hours: u32,   // bits 0..=23
    days: u32,    // bits 1..=31
    months: u16,  // bits 1..=12
    weekdays: u8, // bits 0..=6, Sunday 0
    day_or: bool, // both day fields restricted: a day matches if either does
    zone: Zone,
    text: String, // the fields or the shorthand, lowercase, single spaces
}

/// The fields of a cron spec: their names (for errors), bounds and names.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The first name's value: 1 for `jan`, 0 for `sun`.
    first: u32,
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    first: 0,
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    first: 0,
};
const DAY: Field = Field {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    first: 0,
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    first: 1,
};
const WEEKDAY: Field = Field {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    first: 0,
};

impl Cron {
    /// Reads a cron spec (five fields, or a shorthand) to fire in `zone`.
    ///
    /// # Examples
    /// ```
    /// use smolgram::jobs::{Cron, Zone};
    ///
    /// let cron = Cron::parse("0 8 * * mon-fri", Zone::Utc).unwrap();
    /// assert_eq!(cron, Cron::parse("0 8 * * 1-5", Zone::Utc).unwrap());
    /// let e = Cron::parse("61 * * * *", Zone::Utc).unwrap_err();
    /// assert_eq!(e.to_string(), "cron: minute field \"61\": 61 is over 59");
    /// ```
    pub fn parse(spec: &str, zone: Zone) -> Result<Cron, ScheduleError> {
        let cron = Cron::parse_unchecked(spec, zone)?;
        if !cron.day_or && !cron.days_exist() {
            return Err(err(format!(
                "cron: \"{}\": its days of the month are in none of its months; it would never fire",
                cron.text
            )));
        }
        Ok(cron)
    }

    /// [`Cron::parse`] without the check that the spec can fire at all.
    fn parse_unchecked(spec: &str, zone: Zone) -> Result<Cron, ScheduleError> {
        if let Zone::Fixed(offset) = zone {
            if offset.unsigned_abs() > MAX_OFFSET as u32 {
                return Err(err(format!(
                    "cron: zone {zone} is more than 18 hours from utc"
                )));
            }
        }
        let text = spec.trim().to_ascii_lowercase();
        let fields = match text.as_str() {
            "" => {
                return Err(err(
                    "cron: empty spec; expected 5 fields or a shorthand like @daily",
                ))
            }
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            s if s.starts_with('@') => {
                return Err(err(format!(
                    "cron: unknown shorthand \"{s}\"; expected @hourly, @daily, @midnight, \
                     @weekly, @monthly, @yearly or @annually"
                )))
            }
            s => s,
        };
        let f: Vec<&str> = fields.split_whitespace().collect();
        if f.len() != 5 {
            return Err(err(format!(
                "cron: expected 5 fields (minute hour day-of-month month day-of-week), got {}",
                f.len()
            )));
        }
        let weekdays = parse_field(&WEEKDAY, f[4])?;
        // Vixie cron: 7 is Sunday too, folded onto 0.
        let weekdays = ((weekdays | (weekdays >> 7)) & 0x7f) as u8;
        let text = if text.starts_with('@') {
            text.clone()
        } else {
            f.join(" ")
        };
        Ok(Cron {
            minutes: parse_field(&MINUTE, f[0])?,
            hours: parse_field(&HOUR, f[1])? as u32,
            days: parse_field(&DAY, f[2])? as u32,
            months: parse_field(&MONTH, f[3])? as u16,
            weekdays,
            day_or: !f[2].starts_with('*') && !f[4].starts_with('*'),
            zone,
            text,
        })
    }

    /// The zone whose wall clock the fields are read on.
    pub fn zone(&self) -> Zone {
        self.zone
    }

    /// The first minute boundary strictly after `after` that the spec
    /// matches, on the wall clock of its zone; `None` if there is none
    /// within 400 years (only for a spec that can never fire, which
    /// [`Cron::parse`] refuses) or past what a `SystemTime` holds.
    ///
    /// It skips whole months that cannot match, then goes a day at a time
    /// through the allowed months and an hour at a time through a matching
    /// day: at most a few hundred steps per year searched, never one per
    /// minute.
    pub fn next_after(&self, after: SystemTime) -> Option<SystemTime> {
        let (secs, _) = unix_parts(after);
        let local = secs.checked_add(i64::from(self.zone.offset_seconds()))?;
        // The next whole minute strictly after `after` (nanoseconds included).
        let from = local.div_euclid(60).checked_add(1)?;
        let minute = self.next_minute_from(from)?;
        let utc = minute
            .checked_mul(60)?
            .checked_sub(i64::from(self.zone.offset_seconds()))?;
        from_unix(utc, 0)
    }

    /// The first local minute (since the epoch, on the zone's wall clock)
    /// at or after `from` that matches, within 400 years.
    fn next_minute_from(&self, from: i64) -> Option<i64> {
        let mut day = from.div_euclid(MINUTES_PER_DAY);
        let mut minute_of_day = from.rem_euclid(MINUTES_PER_DAY) as u32;
        let limit = day + DAYS_400Y;
        while day <= limit {
            let (year, month, dom) = civil_from_days(day);
            if !has(self.months.into(), month) {
                day = self.next_month_start(year, month);
                minute_of_day = 0;
                continue;
            }
            if self.day_matches(dom, weekday(day)) {
                if let Some(m) = self.time_from(minute_of_day) {
                    return Some(day * MINUTES_PER_DAY + i64::from(m));
                }
            }
            day += 1;
            minute_of_day = 0;
        }
        None
    }

    /// The first day of the next allowed month after `month` of `year`.
    fn next_month_start(&self, year: i64, month: u32) -> i64 {
        match next_bit(self.months.into(), month + 1, 12) {
            Some(m) => days_from_civil(year, m, 1),
            // `months` is never empty: a field holds at least one value.
            None => days_from_civil(
                year + 1,
                next_bit(self.months.into(), 1, 12).unwrap_or(1),
                1,
            ),
        }
    }

    /// Whether a day of the month and of the week match, by Vixie's rule.
    fn day_matches(&self, dom: u32, weekday: u32) -> bool {
        let by_dom = has(self.days.into(), dom);
        let by_weekday = has(self.weekdays.into(), weekday);
        if self.day_or {
            by_dom || by_weekday
        } else {
            by_dom && by_weekday
        }
    }

    /// The first allowed minute of a day at or after `minute_of_day`.
    fn time_from(&self, minute_of_day: u32) -> Option<u32> {
        let (h0, m0) = (minute_of_day / 60, minute_of_day % 60);
        let mut hour = next_bit(self.hours.into(), h0, 23)?;
        loop {
            let start = if hour == h0 { m0 } else { 0 };
            if let Some(m) = next_bit(self.minutes, start, 59) {
                return Some(hour * 60 + m);
            }
            hour = next_bit(self.hours.into(), hour + 1, 23)?;
        }
    }

    /// Whether some day of the month exists in some month (29 February
    /// counts): the check that an AND-matched spec can ever fire. A spec
    /// that passes fires within 400 years, since a given date falls on
    /// every day of the week within that cycle.
    fn days_exist(&self) -> bool {
        (1..=12).filter(|&m| has(self.months.into(), m)).any(|m| {
            let longest = if m == 2 { 29 } else { days_in_month(2001, m) };
            next_bit(self.days.into(), 1, longest).is_some()
        })
    }
}

/// Equal when they fire at the same minutes in the same zone, whatever the
/// spelling.
impl PartialEq for Cron {
    fn eq(&self, other: &Cron) -> bool {
        (
            self.minutes,
            self.hours,
            self.days,
            self.months,
            self.weekdays,
            self.day_or,
            self.zone,
        ) == (
            other.minutes,
            other.hours,
            other.days,
            other.months,
            other.weekdays,
            other.day_or,
            other.zone,
        )
    }
}

impl Eq for Cron {}

/// The spec as written (lower case, single spaces), without its zone.
impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The wall clock a [`Cron`] is read on: UTC or a fixed offset.
///
/// No named zones with daylight saving (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    /// UTC.
    Utc,
    /// A fixed offset, in seconds east of UTC (`+01:00` is 3600), at most
    /// 18 hours either way.
    Fixed(i32),
}

impl Zone {
    /// Reads `UTC` or `Z` (any case), or an offset `+02:00`, `-05:30`,
    /// `+0530`, `+02` (or `+05:30:15`, with seconds) of at most 18 hours.
    ///
    /// # Examples
    /// ```
    /// use smolgram::jobs::Zone;
    ///
    /// assert_eq!(Zone::parse("-05:30").unwrap(), Zone::Fixed(-(5 * 3600 + 30 * 60)));
    /// assert_eq!(Zone::parse("z").unwrap(), Zone::Utc);
    /// ```
    pub fn parse(text: &str) -> Result<Zone, ScheduleError> {
        if text.eq_ignore_ascii_case("utc") || text.eq_ignore_ascii_case("z") {
            return Ok(Zone::Utc);
        }
        parse_offset(text).map(Zone::Fixed)
    }

    /// Seconds east of UTC: 0 for [`Zone::Utc`].
    pub fn offset_seconds(self) -> i32 {
        match self {
            Zone::Utc => 0,
            Zone::Fixed(offset) => offset,
        }
    }
}

/// `UTC`, or the offset as `+HH:MM` (`+HH:MM:SS` if it has seconds).
impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Zone::Utc => f.write_str("UTC"),
            Zone::Fixed(offset) => {
                let sign = if offset < 0 { '-' } else { '+' };
                let abs = offset.unsigned_abs();
                write!(f, "{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60)?;
                if abs % 60 != 0 {
                    write!(f, ":{:02}", abs % 60)?;
                }
                Ok(())
            }
        }
    }
}

/// A schedule's text that does not read: one lowercase line naming the part
/// at fault, e.g. `cron: minute field "61": 61 is over 59`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleError(String);

fn err(message: impl Into<String>) -> ScheduleError {
    ScheduleError(message.into())
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScheduleError {}

// ---- cron fields ----

/// `cron` text: the spec, then an optional `tz <zone>`.
fn parse_cron_with_zone(rest: &str) -> Result<Cron, ScheduleError> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    match words.as_slice() {
        [spec @ .., tz, zone] if tz.eq_ignore_ascii_case("tz") => {
            let zone = Zone::parse(zone).map_err(|e| err(format!("cron: tz {e}")))?;
            Cron::parse(&spec.join(" "), zone)
        }
        _ => Cron::parse(rest, Zone::Utc),
    }
}

/// One field's bit set: bit `v` for each value `v` it allows.
fn parse_field(field: &Field, text: &str) -> Result<u64, ScheduleError> {
    let fail = |detail: String| err(format!("cron: {} field \"{text}\": {detail}", field.name));
    let mut bits = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(parse_step(step).map_err(fail)?)),
            None => (item, None),
        };
        let (lo, hi) = if range == "*" {
            (field.min, field.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (lo, hi) = (
                parse_value(field, a).map_err(fail)?,
                parse_value(field, b).map_err(fail)?,
            );
            if lo > hi {
                return Err(fail(format!("range {a}-{b} is reversed")));
            }
            (lo, hi)
        } else if step.is_some() {
            return Err(fail(format!("step on \"{range}\" needs a range a-b or *")));
        } else {
            let v = parse_value(field, range).map_err(fail)?;
            (v, v)
        };
        for v in (lo..=hi).step_by(step.unwrap_or(1) as usize) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

/// A step `n` of `*/n` or `a-b/n`: at least 1.
fn parse_step(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(0) => Err("step 0 must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("step \"{text}\" is not a number")),
    }
}

/// A number within the field's bounds, or one of its names.
fn parse_value(field: &Field, text: &str) -> Result<u32, String> {
    if text.is_empty() {
        return Err("a number is missing".into());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let v = text.parse::<u32>().unwrap_or(u32::MAX);
        return match v {
            v if v > field.max => Err(format!("{text} is over {}", field.max)),
            v if v < field.min => Err(format!("{text} is under {}", field.min)),
            v => Ok(v),
        };
    }
    match field
        .names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(text))
    {
        Some(i) => Ok(i as u32 + field.first),
        None if field.names.is_empty() => Err(format!("\"{text}\" is not a number")),
        None => Err(format!(
            "unknown name \"{text}\"; expected {} to {} or {}-{}",
            field.names[0],
            field.names[field.names.len() - 1],
            field.min,
            field.max
        )),
    }
}

/// Whether bit `v` is set.
fn has(bits: u64, v: u32) -> bool {
    bits >> v & 1 == 1
}

/// The lowest set bit in `from..=to`.
fn next_bit(bits: u64, from: u32, to: u32) -> Option<u32> {
    if from > to {
        return None;
    }
    let window = (bits >> from) << from & (u64::MAX >> (63 - to));
    (window != 0).then(|| window.trailing_zeros())
}

// ---- every, at ----

/// Units of an interval, largest first, with their length in nanoseconds.
const UNITS: [(&str, u128); 7] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// `every` text: numbers with units, `90s`, `1h30m`, `1h 30m`; at least 1 s.
fn parse_every(text: &str) -> Result<Duration, ScheduleError> {
    let fail = |detail: String| err(format!("every: \"{text}\": {detail}"));
    let compact: String = text.split_whitespace().collect();
    if compact.is_empty() {
        return Err(err("every: the interval is missing, e.g. `every 10m`"));
    }
    let mut rest = compact.as_str();
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let letters = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        let (number, unit) = (&rest[..digits], &rest[digits..digits + letters]);
        if number.is_empty() {
            return Err(fail(format!("expected a number before \"{unit}\"")));
        }
        let size = UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))
            .map(|&(_, size)| size)
            .ok_or_else(|| {
                fail(format!(
                    "unknown unit \"{unit}\"; use d, h, m, s (or ms, us, ns)"
                ))
            })?;
        let n: u128 = number.parse().map_err(|_| fail("too long".into()))?;
        nanos = n
            .checked_mul(size)
            .and_then(|x| x.checked_add(nanos))
            .ok_or_else(|| fail("too long".into()))?;
        rest = &rest[digits + letters..];
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| fail("too long".into()))?;
    let interval = Duration::new(secs, (nanos % 1_000_000_000) as u32);
    if interval < Duration::from_secs(1) {
        return Err(fail("the interval must be at least 1s".into()));
    }
    Ok(interval)
}

/// An interval as `every` reads it: `1d2h3m4s`, then any fraction as `ms`, `us`, `ns`.
struct DurationText(Duration);

impl fmt::Display for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        for (name, size) in UNITS {
            if nanos >= size {
                write!(f, "{}{name}", nanos / size)?;
                nanos %= size;
            }
        }
        Ok(())
    }
}

/// `at` text: RFC 3339 with seconds, `2026-12-24T18:00:00Z`, `…+01:00`, `….5Z`.
fn parse_instant(text: &str) -> Result<SystemTime, ScheduleError> {
    let fail = |detail: &str| {
        err(format!(
            "at: \"{text}\": {detail}; expected RFC 3339 like 2026-12-24T18:00:00Z or …+01:00"
        ))
    };
    let b = text.as_bytes();
    let sep_ok = text.is_ascii()
        && b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't')
        && b[13] == b':'
        && b[16] == b':';
    if !sep_ok {
        return Err(fail("not a date and time"));
    }
    let num = |range: std::ops::Range<usize>, what: &str| -> Result<u32, ScheduleError> {
        let s = &text[range];
        if s.bytes().all(|c| c.is_ascii_digit()) {
            Ok(s.parse().unwrap_or(0))
        } else {
            Err(fail(&format!("{what} \"{s}\" is not a number")))
        }
    };
    let (year, month, day) = (num(0..4, "year")?, num(5..7, "month")?, num(8..10, "day")?);
    let (hour, minute, second) = (
        num(11..13, "hour")?,
        num(14..16, "minute")?,
        num(17..19, "second")?,
    );
    if !(1..=12).contains(&month) {
        return Err(fail(&format!("month {month} is not 1-12")));
    }
    if day < 1 || day > days_in_month(year.into(), month) {
        return Err(fail(&format!("day {day} is not in {year}-{month:02}")));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(fail(&format!(
            "time {hour:02}:{minute:02}:{second:02} is not on a clock"
        )));
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return Err(fail("a fraction of a second needs 1 to 9 digits"));
        }
        nanos = fraction[..digits].parse::<u32>().unwrap_or(0) * 10u32.pow(9 - digits as u32);
        rest = &fraction[digits..];
    }
    let offset = if rest.is_empty() {
        return Err(fail("the zone is missing (Z or an offset)"));
    } else if rest.eq_ignore_ascii_case("z") {
        0
    } else {
        parse_offset(rest).map_err(|e| fail(&e.0))?
    };
    let days = days_from_civil(year.into(), month, day);
    let secs =
        days * SECS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second) - i64::from(offset);
    from_unix(secs, nanos).ok_or_else(|| fail("out of range"))
}

/// An instant as `at` reads it, in UTC: `2026-12-24T17:00:00Z`, with a
/// fraction of a second when it has one.
struct InstantText(SystemTime);

impl fmt::Display for InstantText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, nanos) = unix_parts(self.0);
        let (year, month, day) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
        let t = secs.rem_euclid(SECS_PER_DAY);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            t / 3600,
            t / 60 % 60,
            t % 60
        )?;
        if nanos != 0 {
            let fraction = format!("{nanos:09}");
            write!(f, ".{}", fraction.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

/// `+02:00`, `-05:30`, `+0530`, `+02`, `+05:30:15`: seconds east of UTC, at most 18 h.
fn parse_offset(text: &str) -> Result<i32, ScheduleError> {
    let fail = |detail: &str| err(format!("zone \"{text}\": {detail}"));
    let (sign, body) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(fail("expected UTC, Z or an offset like +02:00")),
    };
    let digits: String = body.chars().filter(|&c| c != ':').collect();
    let colons_ok = match body.len() {
        5 | 8 => body.as_bytes()[2] == b':' && (body.len() == 5 || body.as_bytes()[5] == b':'),
        _ => !body.contains(':'),
    };
    if !colons_ok
        || !matches!(digits.len(), 2 | 4 | 6)
        || !digits.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(fail("expected an offset like +02:00, -05:30 or +0530"));
    }
    let part = |i: usize| {
        digits
            .get(i..i + 2)
            .map_or(0, |s| s.parse::<i32>().unwrap_or(0))
    };
    let (hours, minutes, seconds) = (part(0), part(2), part(4));
    if minutes > 59 || seconds > 59 {
        return Err(fail("minutes and seconds must be under 60"));
    }
    let offset = hours * 3600 + minutes * 60 + seconds;
    if offset > MAX_OFFSET {
        return Err(fail("more than 18 hours from utc"));
    }
    Ok(sign * offset)
}

// ---- the calendar ----

/// Seconds and nanoseconds since the epoch, negative before it; the
/// nanoseconds always count forward from the seconds.
fn unix_parts(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            let secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (secs, 0),
                n => (secs - 1, 1_000_000_000 - n),
            }
        }
    }
}

/// The inverse of [`unix_parts`]; `None` past what a `SystemTime` holds.
fn from_unix(secs: i64, nanos: u32) -> Option<SystemTime> {
    let whole = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    whole?.checked_add(Duration::from_nanos(nanos.into()))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
/// `days_from_civil`: years counted from March, so the leap day is last).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400; // 0..=399
    let month_from_march = i64::from((month + 9) % 12); // March 0 … February 11
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_400Y + day_of_era - 719_468 // 719,468 days from 0000-03-01 to 1970-01-01
}

/// The date of a day since 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(DAYS_400Y);
    let day_of_era = z - era * DAYS_400Y; // 0..=146,096
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = ((month_from_march + 2) % 12 + 1) as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day of the week, Sunday 0 (1970-01-01 was a Thursday, 4).
fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RFC 3339 instant, through the `at` parser.
    fn t(text: &str) -> SystemTime {
        parse_instant(text).unwrap()
    }

    /// The next fire time of `spec` after `from`, as `at` text.
    fn next(spec: &str, from: &str) -> Option<String> {
        let schedule = Schedule::parse(spec).unwrap();
        schedule
            .next_after(t(from))
            .map(|at| InstantText(at).to_string())
    }

    fn parse_error(spec: &str) -> String {
        Schedule::parse(spec).unwrap_err().to_string()
    }

    #[test]
    fn calendar_matches_known_dates_and_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(civil_from_days(20_819), (2027, 1, 1));
        assert_eq!(weekday(days_from_civil(2026, 12, 25)), 5); // a Friday
        assert_eq!(weekday(days_from_civil(2028, 2, 29)), 2); // a Tuesday
        let mut expected = (1599, 12, 31);
        for day in days_from_civil(1600, 1, 1)..days_from_civil(2401, 1, 1) {
            let (y, m, d) = expected;
            expected = if d < days_in_month(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            assert_eq!(civil_from_days(day), expected, "day {day}");
            assert_eq!(days_from_civil(expected.0, expected.1, expected.2), day);
        }
    }

    #[test]
    fn cron_field_errors_name_the_field_and_the_fault() {
        let cases = [
            ("cron 61 * * * *", "cron: minute field \"61\": 61 is over 59"),
            ("cron * 24 * * *", "cron: hour field \"24\": 24 is over 23"),
            ("cron * * 0 * *", "cron: day-of-month field \"0\": 0 is under 1"),
            ("cron * * * 13 *", "cron: month field \"13\": 13 is over 12"),
            ("cron * * * * 8", "cron: day-of-week field \"8\": 8 is over 7"),
            ("cron */0 * * * *", "cron: minute field \"*/0\": step 0 must be at least 1"),
            ("cron */x * * * *", "cron: minute field \"*/x\": step \"x\" is not a number"),
            ("cron 5/2 * * * *", "cron: minute field \"5/2\": step on \"5\" needs a range a-b or *"),
            ("cron * 5-1 * * *", "cron: hour field \"5-1\": range 5-1 is reversed"),
            ("cron * * * * fri-mon", "cron: day-of-week field \"fri-mon\": range fri-mon is reversed"),
            ("cron * * 1,,2 * *", "cron: day-of-month field \"1,,2\": a number is missing"),
            ("cron x * * * *", "cron: minute field \"x\": \"x\" is not a number"),
            (
                "cron * * * foo *",
                "cron: month field \"foo\": unknown name \"foo\"; expected jan to dec or 1-12",
            ),
            (
                "cron * * * * funday",
                "cron: day-of-week field \"funday\": unknown name \"funday\"; expected sun to sat or 0-7",
            ),
            (
                "cron * * * *",
                "cron: expected 5 fields (minute hour day-of-month month day-of-week), got 4",
            ),
            (
                "cron * * * * * *",
                "cron: expected 5 fields (minute hour day-of-month month day-of-week), got 6",
            ),
            ("cron", "cron: empty spec; expected 5 fields or a shorthand like @daily"),
            (
                "cron @often",
                "cron: unknown shorthand \"@often\"; expected @hourly, @daily, @midnight, \
                 @weekly, @monthly, @yearly or @annually",
            ),
            (
                "cron 0 0 30 2 *",
                "cron: \"0 0 30 2 *\": its days of the month are in none of its months; it would never fire",
            ),
            (
                "cron 0 0 * * * tz +25:00",
                "cron: tz zone \"+25:00\": more than 18 hours from utc",
            ),
            ("cron 0 0 * * * tz cet", "cron: tz zone \"cet\": expected UTC, Z or an offset like +02:00"),
        ];
        for (spec, message) in cases {
            assert_eq!(parse_error(spec), message, "{spec}");
        }
    }

    #[test]
    fn other_parse_errors_are_one_clear_line() {
        let cases = [
            ("", "empty schedule; expected `every …`, `at …` or `cron …`"),
            ("   ", "empty schedule; expected `every …`, `at …` or `cron …`"),
            ("weekly 5", "unknown schedule kind \"weekly\"; expected `every …`, `at …` or `cron …`"),
            ("every", "every: the interval is missing, e.g. `every 10m`"),
            ("every 10x", "every: \"10x\": unknown unit \"x\"; use d, h, m, s (or ms, us, ns)"),
            ("every 10", "every: \"10\": unknown unit \"\"; use d, h, m, s (or ms, us, ns)"),
            ("every m", "every: \"m\": expected a number before \"m\""),
            ("every 500ms", "every: \"500ms\": the interval must be at least 1s"),
            ("every 0s", "every: \"0s\": the interval must be at least 1s"),
            (
                "at 2026-02-29T00:00:00Z",
                "at: \"2026-02-29T00:00:00Z\": day 29 is not in 2026-02; expected RFC 3339 like \
                 2026-12-24T18:00:00Z or …+01:00",
            ),
            (
                "at 2026-12-24T18:00Z",
                "at: \"2026-12-24T18:00Z\": not a date and time; expected RFC 3339 like \
                 2026-12-24T18:00:00Z or …+01:00",
            ),
            (
                "at 2026-12-24T24:00:00Z",
                "at: \"2026-12-24T24:00:00Z\": time 24:00:00 is not on a clock; expected RFC 3339 \
                 like 2026-12-24T18:00:00Z or …+01:00",
            ),
            (
                "at 2026-12-24T18:00:00",
                "at: \"2026-12-24T18:00:00\": the zone is missing (Z or an offset); expected RFC 3339 like 2026-12-24T18:00:00Z or …+01:00",
            ),
        ];
        for (spec, message) in cases {
            assert_eq!(parse_error(spec), message, "{spec:?}");
        }
    }

    #[test]
    fn odd_text_is_refused_without_a_panic() {
        let specs = [
            "at 2026-12-24T18:00:0é",
            "at 2026-12-24T18:00:00é",
            "at é026-12-24T18:00:00Z",
            "at 2026-12-24T18:00:00.Z",
            "at 2026-12-24T18:00:00+01:00x",
            "every 1é",
            "every é",
            "every 99999999999999999999999999999999999999999d",
            "every 18446744073709551616s",
            "cron é * * * *",
            "cron 99999999999 * * * *",
            "cron */99999999999 * * * *",
            "cron 1-é * * * *",
            "cron * * * * * tz +é",
        ];
        for spec in specs {
            assert!(Schedule::parse(spec).is_err(), "{spec}");
        }
        assert_eq!(
            parse_error("cron */99999999999 * * * *"),
            "cron: minute field \"*/99999999999\": step \"99999999999\" is not a number"
        );
    }

    #[test]
    fn zones_parse_in_each_form_and_refuse_nonsense() {
        assert_eq!(Zone::parse("UTC").unwrap(), Zone::Utc);
        assert_eq!(Zone::parse("Z").unwrap(), Zone::Utc);
        assert_eq!(Zone::parse("+02:00").unwrap(), Zone::Fixed(7200));
        assert_eq!(Zone::parse("-05:30").unwrap(), Zone::Fixed(-19_800));
        assert_eq!(Zone::parse("+0530").unwrap(), Zone::Fixed(19_800));
        assert_eq!(Zone::parse("+02").unwrap(), Zone::Fixed(7200));
        assert_eq!(Zone::parse("+18:00").unwrap(), Zone::Fixed(64_800));
        for bad in [
            "+18:01",
            "+05:60",
            "+5:30",
            "+05:3",
            "05:30",
            "+05-30",
            "+05:30:",
            "",
            "Europe/Berlin",
        ] {
            assert!(Zone::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Zone::Fixed(-19_800).to_string(), "-05:30");
        assert_eq!(Zone::Fixed(3_661).to_string(), "+01:01:01");
        assert_eq!(Zone::parse("+01:01:01").unwrap(), Zone::Fixed(3_661));
        assert!(Cron::parse("* * * * *", Zone::Fixed(18 * 3600 + 1)).is_err());
    }

    #[test]
    fn steps_fire_on_the_next_multiple() {
        assert_eq!(
            next("cron */15 * * * *", "2026-05-04T10:07:30Z").unwrap(),
            "2026-05-04T10:15:00Z"
        );
        assert_eq!(
            next("cron */15 * * * *", "2026-05-04T23:59:00Z").unwrap(),
            "2026-05-05T00:00:00Z"
        );
        assert_eq!(
            next("cron 10-50/20 * * * *", "2026-05-04T10:31:00Z").unwrap(),
            "2026-05-04T10:50:00Z"
        );
    }

    #[test]
    fn weekdays_skip_the_weekend() {
        // 2026-12-25 is a Friday.
        let monday = next("cron 0 8 * * mon-fri", "2026-12-25T09:00:00Z").unwrap();
        assert_eq!(monday, "2026-12-28T08:00:00Z");
        assert_eq!(
            next("cron 0 8 * * 1-5", "2026-12-25T07:59:59Z").unwrap(),
            "2026-12-25T08:00:00Z"
        );
    }

    #[test]
    fn first_of_month_crosses_the_year_end() {
        assert_eq!(
            next("cron 0 0 1 * *", "2026-12-15T12:00:00Z").unwrap(),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            next("cron @yearly", "2026-01-01T00:00:00Z").unwrap(),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            next("cron 30 23 31 dec *", "2026-12-31T23:30:00Z").unwrap(),
            "2027-12-31T23:30:00Z"
        );
    }

    #[test]
    fn leap_day_waits_for_the_next_leap_year() {
        assert_eq!(
            next("cron 0 0 29 2 *", "2026-03-01T00:00:00Z").unwrap(),
            "2028-02-29T00:00:00Z"
        );
        // 2100 is no leap year: from 2096's, the next is 2104's.
        assert_eq!(
            next("cron 0 0 29 feb *", "2096-02-29T00:00:00Z").unwrap(),
            "2104-02-29T00:00:00Z"
        );
    }

    #[test]
    fn a_rare_date_is_found_decades_ahead() {
        // 29 February on a Sunday (`*/7` is 0 and 7, both Sunday; it starts
        // with `*`, so both day fields must match): 40 years from 2088's to 2128's.
        let cron = "cron 0 0 29 2 */7";
        assert_eq!(
            next(cron, "2026-01-01T00:00:00Z").unwrap(),
            "2032-02-29T00:00:00Z"
        );
        assert_eq!(
            next(cron, "2088-02-29T00:00:00Z").unwrap(),
            "2128-02-29T00:00:00Z"
        );
    }

    #[test]
    fn extreme_instants_give_none_or_an_answer_but_no_panic() {
        let far = UNIX_EPOCH + Duration::from_secs(i64::MAX as u64 / 2);
        for spec in [
            "cron * * * * *",
            "cron 0 0 29 2 *",
            "every 1s",
            "at 2026-01-01T00:00:00Z",
        ] {
            let schedule = Schedule::parse(spec).unwrap();
            let _ = schedule.next_after(far);
            let _ = schedule.next_after(UNIX_EPOCH - Duration::from_secs(i64::MAX as u64 / 2));
        }
    }

    #[test]
    fn restricted_day_fields_match_either_by_vixie_rule() {
        // April 2026: the 10th and 17th are Fridays, the 13th a Monday.
        let cron = "cron 0 0 13 * fri";
        assert_eq!(
            next(cron, "2026-04-10T00:00:00Z").unwrap(),
            "2026-04-13T00:00:00Z"
        );
        assert_eq!(
            next(cron, "2026-04-13T00:00:00Z").unwrap(),
            "2026-04-17T00:00:00Z"
        );
        // A day field starting with `*` is unrestricted: then both must match.
        assert_eq!(
            next("cron 0 0 */2 * mon", "2026-04-01T00:00:00Z").unwrap(),
            "2026-04-13T00:00:00Z"
        );
        assert_eq!(
            next("cron 0 0 13 * *", "2026-04-13T00:00:00Z").unwrap(),
            "2026-05-13T00:00:00Z"
        );
    }

    #[test]
    fn shorthands_and_sunday_as_seven() {
        // 2026-12-24 is a Thursday; the next Sunday the 27th.
        assert_eq!(
            next("cron @weekly", "2026-12-24T10:00:00Z").unwrap(),
            "2026-12-27T00:00:00Z"
        );
        assert_eq!(
            next("cron 0 0 * * 7", "2026-12-24T10:00:00Z").unwrap(),
            "2026-12-27T00:00:00Z"
        );
        assert_eq!(
            next("cron 0 0 * * SUN", "2026-12-24T10:00:00Z").unwrap(),
            "2026-12-27T00:00:00Z"
        );
        assert_eq!(
            next("cron @hourly", "2026-12-24T10:00:00Z").unwrap(),
            "2026-12-24T11:00:00Z"
        );
        assert_eq!(
            next("cron @daily", "2026-12-24T10:00:00Z").unwrap(),
            "2026-12-25T00:00:00Z"
        );
        assert_eq!(
            next("cron @midnight", "2026-12-24T10:00:00Z").unwrap(),
            "2026-12-25T00:00:00Z"
        );
        assert_eq!(
            next("cron @monthly", "2026-12-24T10:00:00Z").unwrap(),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            next("cron @annually", "2026-12-24T10:00:00Z").unwrap(),
            "2027-01-01T00:00:00Z"
        );
    }

    #[test]
    fn fixed_zone_reads_the_fields_on_its_wall_clock() {
        assert_eq!(
            next("cron 0 8 * * * tz +05:30", "2026-06-01T00:00:00Z").unwrap(),
            "2026-06-01T02:30:00Z"
        );
        assert_eq!(
            next("cron 0 8 * * * tz +05:30", "2026-06-01T02:30:00Z").unwrap(),
            "2026-06-02T02:30:00Z"
        );
        // 23:00 on Friday at -05:00 is 04:00 on Saturday in UTC.
        assert_eq!(
            next("cron 0 23 * * fri tz -05:00", "2026-12-24T00:00:00Z").unwrap(),
            "2026-12-26T04:00:00Z"
        );
    }

    #[test]
    fn impossible_spec_gives_none_quickly() {
        let cron = Cron::parse_unchecked("0 0 30 2 *", Zone::Utc).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(cron.next_after(t("2026-01-01T00:00:00Z")), None);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn next_is_strictly_after_an_exact_boundary() {
        assert_eq!(
            next("cron */15 * * * *", "2026-05-04T10:15:00Z").unwrap(),
            "2026-05-04T10:30:00Z"
        );
        assert_eq!(
            next("cron */15 * * * *", "2026-05-04T10:14:59.999Z").unwrap(),
            "2026-05-04T10:15:00Z"
        );
        assert_eq!(
            next("cron * * * * *", "2026-05-04T10:15:00.5Z").unwrap(),
            "2026-05-04T10:16:00Z"
        );
        assert_eq!(
            next("cron 0 0 1 1 *", "1969-12-31T23:59:59Z").unwrap(),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn every_adds_its_interval_and_once_fires_only_ahead() {
        let every = Schedule::parse("every 1h30m").unwrap();
        assert_eq!(every, Schedule::Every(Duration::from_secs(5400)));
        assert_eq!(
            every.next_after(t("2026-05-04T10:15:00Z")),
            Some(t("2026-05-04T11:45:00Z"))
        );
        assert_eq!(
            Schedule::Every(Duration::ZERO).next_after(t("2026-05-04T10:15:00Z")),
            None
        );
        assert_eq!(
            Schedule::parse("every 90s").unwrap(),
            Schedule::Every(Duration::from_secs(90))
        );
        assert_eq!(
            Schedule::parse("every 1d").unwrap(),
            Schedule::Every(Duration::from_secs(86_400))
        );
        assert_eq!(
            Schedule::parse("EVERY 2h 10m").unwrap(),
            Schedule::Every(Duration::from_secs(7800))
        );

        let once = Schedule::parse("at 2026-12-24T18:00:00+01:00").unwrap();
        assert_eq!(once, Schedule::Once(t("2026-12-24T17:00:00Z")));
        assert_eq!(
            once.next_after(t("2026-12-24T16:59:59Z")),
            Some(t("2026-12-24T17:00:00Z"))
        );
        assert_eq!(once.next_after(t("2026-12-24T17:00:00Z")), None);
        assert_eq!(once.next_after(t("2027-01-01T00:00:00Z")), None);
    }

    #[test]
    fn display_reads_back_to_an_equal_schedule() {
        let specs = [
            ("every 90s", "every 1m30s"),
            ("every 1h30m", "every 1h30m"),
            ("every 1d 1ms", "every 1d1ms"),
            ("every 1500ms", "every 1s500ms"),
            ("at 2026-12-24T18:00:00+01:00", "at 2026-12-24T17:00:00Z"),
            ("at 1969-07-20T20:17:40.25Z", "at 1969-07-20T20:17:40.25Z"),
            ("at 0000-01-01T00:00:00Z", "at 0000-01-01T00:00:00Z"),
            (
                "at 9999-12-31T23:59:59.999999999Z",
                "at 9999-12-31T23:59:59.999999999Z",
            ),
            ("cron */15 * * * *", "cron */15 * * * *"),
            ("cron   0 8 *  * MON-FRI", "cron 0 8 * * mon-fri"),
            (
                "cron 0 8 * * mon-fri tz +01:00",
                "cron 0 8 * * mon-fri tz +01:00",
            ),
            ("cron 0 8 * * * TZ -0530", "cron 0 8 * * * tz -05:30"),
            ("cron 0 0 * * * tz Z", "cron 0 0 * * *"),
            ("cron @Daily", "cron @daily"),
            ("cron 0 0 13 * fri", "cron 0 0 13 * fri"),
            (
                "cron 0,30 9-17/2 1-15 jan,jul 0-7",
                "cron 0,30 9-17/2 1-15 jan,jul 0-7",
            ),
        ];
        for (spec, canonical) in specs {
            let schedule = Schedule::parse(spec).unwrap();
            assert_eq!(schedule.to_string(), canonical, "{spec}");
            assert_eq!(Schedule::parse(canonical).unwrap(), schedule, "{spec}");
        }
        // Equal by what they fire on, whatever the spelling.
        assert_eq!(
            Schedule::parse("cron @daily").unwrap(),
            Schedule::parse("cron 0 0 * * *").unwrap()
        );
        assert_ne!(
            Schedule::parse("cron @daily").unwrap(),
            Schedule::parse("cron @daily tz +01:00").unwrap()
        );
        assert_ne!(
            Schedule::parse("cron 0 0 1 * 1").unwrap(),
            Schedule::parse("cron 0 0 1 * */7").unwrap()
        );
    }

    #[test]
    fn serde_keeps_the_canonical_text() {
        for spec in [
            "every 10m",
            "at 2026-12-24T17:00:00Z",
            "cron 0 8 * * mon-fri tz +01:00",
        ] {
            let schedule = Schedule::parse(spec).unwrap();
            let json = serde_json::to_string(&schedule).unwrap();
            assert_eq!(json, format!("\"{spec}\""));
            assert_eq!(serde_json::from_str::<Schedule>(&json).unwrap(), schedule);
        }
        let e = serde_json::from_str::<Schedule>("\"cron 61 * * * *\"").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cron: minute field \"61\": 61 is over 59"),
            "{e}"
        );
    }

    /// A random field: `*`, a number, a range, a step or a list of them.
    fn random_field(rng: &mut fastrand::Rng, min: u32, max: u32) -> String {
        let item = |rng: &mut fastrand::Rng| match rng.u32(0..5) {
            0 => "*".to_string(),
            1 => format!("*/{}", rng.u32(1..=max.max(2))),
            2 => {
                let a = rng.u32(min..=max);
                format!("{a}-{}", rng.u32(a..=max))
            }
            3 => {
                let a = rng.u32(min..=max);
                format!("{a}-{}/{}", rng.u32(a..=max), rng.u32(1..5))
            }
            _ => rng.u32(min..=max).to_string(),
        };
        match rng.u32(0..4) {
            0 => (0..rng.usize(2..4))
                .map(|_| item(rng))
                .collect::<Vec<_>>()
                .join(","),
            _ => item(rng),
        }
    }

    /// The next match by brute force: minute by minute, up to `days` days,
    /// with its own wall clock counters rather than the day arithmetic.
    fn reference_next(cron: &Cron, after: i64, days: i64) -> Option<i64> {
        let local = after + i64::from(cron.zone.offset_seconds());
        let first = local.div_euclid(60) + 1;
        let (mut y, mut mo, mut d) = civil_from_days(first.div_euclid(MINUTES_PER_DAY));
        let mut wd = weekday(first.div_euclid(MINUTES_PER_DAY));
        let mut of_day = first.rem_euclid(MINUTES_PER_DAY) as u32;
        for minute in first..first + days * MINUTES_PER_DAY {
            let day_ok = {
                let by_dom = cron.days >> d & 1 == 1;
                let by_wd = cron.weekdays >> wd & 1 == 1;
                if cron.day_or {
                    by_dom || by_wd
                } else {
                    by_dom && by_wd
                }
            };
            if cron.months >> mo & 1 == 1
                && day_ok
                && cron.hours >> (of_day / 60) & 1 == 1
                && cron.minutes >> (of_day % 60) & 1 == 1
            {
                return Some(minute * 60 - i64::from(cron.zone.offset_seconds()));
            }
            of_day += 1;
            if of_day == 1440 {
                of_day = 0;
                wd = (wd + 1) % 7;
                d += 1;
                if d > days_in_month(y, mo) {
                    d = 1;
                    mo += 1;
                    if mo > 12 {
                        mo = 1;
                        y += 1;
                    }
                }
            }
        }
        None
    }

    #[test]
    fn next_after_agrees_with_a_minute_by_minute_scan() {
        const DAYS: i64 = 400;
        let mut rng = fastrand::Rng::with_seed(16);
        let mut checked = 0;
        while checked < 200 {
            let spec = [
                random_field(&mut rng, 0, 59),
                random_field(&mut rng, 0, 23),
                random_field(&mut rng, 1, 31),
                random_field(&mut rng, 1, 12),
                random_field(&mut rng, 0, 7),
            ]
            .join(" ");
            let zone = match rng.u32(0..3) {
                0 => Zone::Utc,
                _ => Zone::Fixed(rng.i32(-18 * 60..=18 * 60) * 60),
            };
            let Ok(cron) = Cron::parse(&spec, zone) else {
                continue; // a spec that never fires: refused, as a test above checks
            };
            // 2000-01-01 to 2040-01-01, at any second.
            let after = rng.i64(946_684_800..2_208_988_800);
            let fast = cron
                .next_after(from_unix(after, 0).unwrap())
                .map(|at| unix_parts(at).0);
            match reference_next(&cron, after, DAYS) {
                Some(slow) => assert_eq!(fast, Some(slow), "{spec} tz {zone} after {after}"),
                None => assert!(
                    fast.is_none_or(|f| f >= after + DAYS * SECS_PER_DAY),
                    "{spec} after {after}"
                ),
            }
            checked += 1;
        }
    }
}
