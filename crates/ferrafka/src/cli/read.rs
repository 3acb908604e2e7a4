//! `topics read TOPIC`: print a range of a topic's messages with a [`TopicReader`], one line
//! each, every byte a terminal could act on escaped.

use std::io::Write;
use std::time::SystemTime;

use crate::app::App;
use crate::messages::Message;
use crate::reader::{Order, StartAt, StopAt, TopicReader};

/// Arguments of `topics read`.
///
/// Without a start option, reading starts at each partition's oldest message; without
/// `--follow` it stops at the end offsets taken when it starts, so it prints exactly that range
/// even while producers keep writing.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// The topic to read (any topic of the cluster, declared or not).
    #[arg(value_name = "TOPIC")]
    pub topic: String,
    /// Read only this partition; repeat for more (all partitions by default).
    #[arg(long = "partition", short = 'p', value_name = "P")]
    pub partitions: Vec<i32>,
    /// Start at this offset (clamped to the retained offsets).
    #[arg(long, value_name = "OFFSET", group = "start")]
    pub from_offset: Option<u64>,
    /// Start at the first message at or after this time (RFC 3339, e.g.
    /// 2026-12-07T09:30:00Z or 2026-12-07T10:30:00+01:00).
    #[arg(long, value_name = "TIME", group = "start", value_parser = parse_time)]
    pub from_time: Option<SystemTime>,
    /// Start N offsets before each partition's end offset.
    #[arg(long, value_name = "N", group = "start")]
    pub last: Option<u64>,
    /// Start at the oldest retained message (the default).
    #[arg(long, group = "start")]
    pub from_beginning: bool,
    /// Stop before the first message at or after this time (RFC 3339), and at the end offsets
    /// at the latest.
    #[arg(long, value_name = "TIME", value_parser = parse_time, conflicts_with = "follow")]
    pub until_time: Option<SystemTime>,
    /// Stop after N messages in all.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Keep printing new messages after catching up, until interrupted.
    #[arg(long)]
    pub follow: bool,
    /// Merge the partitions by timestamp instead of printing each as it arrives.
    #[arg(long)]
    pub merged: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReadFormat::Text)]
    pub format: ReadFormat,
}

/// How `topics read` prints a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadFormat {
    /// Tab-separated: partition, offset, timestamp (RFC 3339, `-` if none), key, payload.
    /// Backslash, tab, newline, other control characters, invisible or bidirectional Unicode
    /// and bytes that are not UTF-8 are escaped (`\\`, `\t`, `\n`, `\u{202e}`, `\xff`); a
    /// missing key or payload prints `\N`.
    Text,
    /// One JSON object per line: partition, offset, timestamp, timestamp_ms, key, payload
    /// (strings, null when missing; `key_hex`/`payload_hex` instead when not UTF-8), with the
    /// same characters escaped as JSON `\u` escapes.
    Json,
}

fn parse_time(text: &str) -> Result<SystemTime, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(SystemTime::from)
        .map_err(|e| {
            format!("{e}: give an RFC 3339 time such as 2026-12-07T09:30:00Z or 2026-12-07T10:30:00+01:00")
        })
}

impl ReadArgs {
    fn start(&self) -> StartAt {
        if let Some(offset) = self.from_offset {
            StartAt::Offset(i64::try_from(offset).unwrap_or(i64::MAX))
        } else if let Some(time) = self.from_time {
            StartAt::Time(time)
        } else if let Some(n) = self.last {
            StartAt::Last(n)
        } else {
            StartAt::Beginning
        }
    }

    fn stop(&self) -> StopAt {
        match (self.follow, self.until_time) {
            (true, _) => StopAt::Never,
            (false, Some(time)) => StopAt::Time(time),
            (false, None) => StopAt::EndOffsets,
        }
    }
}

/// Why `topics read` stopped early.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// Reading failed.
    Read(crate::Error),
    /// Writing the output failed.
    Output(std::io::Error),
}

impl From<crate::Error> for ReadFailure {
    fn from(e: crate::Error) -> Self {
        ReadFailure::Read(e)
    }
}

/// Reads and prints; a closed output (`| head`) ends the read quietly.
pub(crate) fn run(app: &App, args: &ReadArgs, out: &mut dyn Write) -> Result<(), ReadFailure> {
    let mut builder = TopicReader::builder(&args.topic)
        .start(args.start())
        .stop(args.stop())
        .order(if args.merged {
            Order::Timestamp
        } else {
            Order::PerPartition
        });
    if !args.partitions.is_empty() {
        builder = builder.partitions(args.partitions.iter().copied());
    }
    if let Some(count) = args.count {
        builder = builder.max_messages(count);
    }
    let reader = builder.open(app)?;
    for message in reader {
        let line = match args.format {
            ReadFormat::Text => text_line(&message?),
            ReadFormat::Json => json_line(&message?),
        };
        let written = writeln!(out, "{line}").and_then(|()| out.flush());
        if let Err(e) = written {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                break;
            }
            return Err(ReadFailure::Output(e));
        }
    }
    Ok(())
}

fn rfc3339(message: &Message) -> Option<String> {
    let millis = message.timestamp().millis()?;
    let time = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(millis)?;
    Some(time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// A message as a tab-separated line.
pub(crate) fn text_line(message: &Message) -> String {
    let field = |bytes: Option<&[u8]>| bytes.map_or_else(|| "\\N".to_string(), escape_bytes);
    format!(
        "{}\t{}\t{}\t{}\t{}",
        message.partition(),
        message.offset(),
        rfc3339(message).unwrap_or_else(|| "-".into()),
        field(message.key()),
        field(message.payload()),
    )
}

/// A message as one JSON object.
pub(crate) fn json_line(message: &Message) -> String {
    let mut object = serde_json::Map::new();
    object.insert("partition".into(), message.partition().into());
    object.insert("offset".into(), message.offset().into());
    object.insert("timestamp".into(), rfc3339(message).into());
    object.insert("timestamp_ms".into(), message.timestamp().millis().into());
    for (name, bytes) in [("key", message.key()), ("payload", message.payload())] {
        match bytes.map(std::str::from_utf8) {
            None => {
                object.insert(name.into(), serde_json::Value::Null);
            }
            Some(Ok(text)) => {
                object.insert(name.into(), text.into());
            }
            Some(Err(_)) => {
                object.insert(name.into(), serde_json::Value::Null);
                let hex: String = bytes
                    .unwrap_or_default()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                object.insert(format!("{name}_hex"), hex.into());
            }
        }
    }
    let mut line = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut line, SafeJson);
    serde::Serialize::serialize(&object, &mut serializer).expect("a JSON value serializes");
    String::from_utf8(line).expect("JSON is UTF-8")
}

/// Characters a terminal may act on or hide: control characters (C0, DEL, C1), zero-width and
/// bidirectional formatting characters, line and paragraph separators, the byte-order mark.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}')
}

/// `bytes` as printable text: see [`ReadFormat::Text`].
pub(crate) fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// serde_json's compact output, with [`is_unsafe`] characters written as `\u` escapes (which
/// JSON readers turn back into the same characters).
struct SafeJson;

impl serde_json::ser::Formatter for SafeJson {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut utf16 = [0u16; 2];
        for c in fragment.chars() {
            if is_unsafe(c) {
                for unit in c.encode_utf16(&mut utf16) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            } else {
                let mut buf = [0u8; 4];
                writer.write_all(c.encode_utf8(&mut buf).as_bytes())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(words: &[&str]) -> Result<ReadArgs, clap::Error> {
        let mut argv = vec!["app", "topics", "read"];
        argv.extend_from_slice(words);
        let cli = crate::cli::Cli::try_parse_from(argv)?;
        match cli.command {
            crate::cli::Command::Topics(t) => match t.action {
                super::super::topics::TopicsAction::Read(args) => Ok(args),
                other => panic!("parsed {other:?}"),
            },
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn read_arguments_resolve_to_start_stop_and_order() {
        let args = parse(&["orders", "-p", "0", "--partition", "2", "--last", "5"]).unwrap();
        assert_eq!(args.partitions, [0, 2]);
        assert_eq!(args.start(), StartAt::Last(5));
        assert_eq!(args.stop(), StopAt::EndOffsets);
        let args = parse(&[
            "orders",
            "--from-time",
            "2026-12-07T10:30:00+01:00",
            "--follow",
        ]);
        let args = args.unwrap();
        let expected = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_635_800);
        assert_eq!(args.start(), StartAt::Time(expected));
        assert_eq!(args.stop(), StopAt::Never);
        let args = parse(&["orders", "--until-time", "2026-12-07T09:30:00Z"]).unwrap();
        assert_eq!(args.start(), StartAt::Beginning);
        assert_eq!(args.stop(), StopAt::Time(expected));
    }

    #[test]
    fn conflicting_or_malformed_read_arguments_are_refused() {
        let error = parse(&["t", "--last", "3", "--from-offset", "1"]).unwrap_err();
        assert!(error.to_string().contains("cannot be used with"), "{error}");
        let error = parse(&["t", "--follow", "--until-time", "2026-12-07T09:30:00Z"]);
        assert!(error.is_err());
        let error = parse(&["t", "--from-time", "yesterday"]).unwrap_err();
        assert!(error.to_string().contains("RFC 3339"), "{error}");
    }

    #[test]
    fn text_escapes_every_byte_a_terminal_could_act_on() {
        let payload = b"tab\there\nnew \x1b[31mred\x07 \\ \xff\xfe ok \xe2\x80\xae rtl \xc2\x9b";
        let message = Message::builder("t", 1, 42)
            .timestamp(1_796_635_800_123)
            .payload(payload.to_vec())
            .build();
        let line = text_line(&message);
        assert_eq!(
            line,
            "1\t42\t2026-12-07T09:30:00.123Z\t\\N\t\
             tab\\there\\nnew \\u{1b}[31mred\\u{7} \\\\ \\xff\\xfe ok \\u{202e} rtl \\u{9b}"
        );
        assert!(line.chars().all(|c| c == '\t' || !is_unsafe(c)), "{line:?}");
    }

    #[test]
    fn json_is_lossless_for_text_and_escapes_what_a_terminal_could_act_on() {
        let message = Message::builder("t", 0, 7)
            .key("k\u{202e}1")
            .payload("{\"a\":\"\u{1b}x\"}")
            .build();
        let line = json_line(&message);
        assert!(!line.chars().any(is_unsafe), "{line:?}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["key"], "k\u{202e}1");
        assert_eq!(value["payload"], "{\"a\":\"\u{1b}x\"}");
        assert_eq!(value["timestamp"], serde_json::Value::Null);
        assert_eq!(
            (value["partition"].clone(), value["offset"].clone()),
            (0.into(), 7.into())
        );

        let binary = Message::builder("t", 0, 8)
            .payload(vec![0xff, 0x00])
            .build();
        let value: serde_json::Value = serde_json::from_str(&json_line(&binary)).unwrap();
        assert_eq!(value["payload"], serde_json::Value::Null);
        assert_eq!(value["payload_hex"], "ff00");
        assert_eq!(value["key"], serde_json::Value::Null);
    }
}
