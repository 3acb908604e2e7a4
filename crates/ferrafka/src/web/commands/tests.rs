//! Decoding, expiry and once-only handling of commands.

use std::time::Duration;

use super::schema::{Envelope, Handled};
use super::*;

fn pause() -> Action {
    Action::PausePartition {
        consumer_group: "g".into(),
        topic: "orders".into(),
        partition: 3,
        for_ms: None,
    }
}

#[test]
fn a_command_and_an_acknowledgement_read_back_as_written() {
    let command = Command::new(
        Target::Process("h:1:ab".into()),
        pause(),
        Duration::from_secs(60),
        "alice",
    );
    let json = Record::Command(command.clone()).to_json();
    let text = String::from_utf8(json.clone()).unwrap();
    assert!(text.contains(r#""type":"command""#), "{text}");
    assert!(
        text.contains(r#""action":{"type":"pause_partition","consumer_group":"g""#),
        "{text}"
    );
    assert!(text.contains(r#""target":{"process":"h:1:ab"}"#), "{text}");
    assert_eq!(decode(&json).unwrap(), Record::Command(command.clone()));
    assert_eq!(command.expires_at_ms - command.issued_at_ms, 60_000);
    let ack = Acknowledgement::new(
        &command.command_id,
        "h:1:ab",
        Outcome::Refused {
            reason: "not here".into(),
        },
    );
    let json = Record::Acknowledgement(ack.clone()).to_json();
    let text = String::from_utf8(json.clone()).unwrap();
    assert!(
        text.contains(r#""outcome":"refused","reason":"not here""#),
        "{text}"
    );
    assert_eq!(decode(&json).unwrap(), Record::Acknowledgement(ack.clone()));
    assert_eq!(ack.key(), format!("{}/h:1:ab", command.command_id));
}

#[test]
fn command_ids_are_fresh_and_targets_select_processes() {
    let a = Command::new(Target::All, Action::Quiet, Duration::from_secs(1), "t");
    let b = Command::new(Target::All, Action::Quiet, Duration::from_secs(1), "t");
    assert_ne!(a.command_id, b.command_id);
    assert_eq!(a.command_id.len(), 32);
    assert!(a.is_for("anyone"));
    let one = Command::new(
        Target::Process("p1".into()),
        Action::Stop,
        Duration::from_secs(1),
        "t",
    );
    assert!(one.is_for("p1"));
    assert!(!one.is_for("p2"));
}

#[test]
fn a_command_expires_after_its_expiry_time() {
    let c = Command::new(Target::All, Action::Quiet, Duration::from_secs(10), "t");
    assert!(!c.expired_at(c.issued_at_ms));
    assert!(!c.expired_at(c.expires_at_ms));
    assert!(c.expired_at(c.expires_at_ms + 1));
}

#[test]
fn written_by_hand_with_unknown_fields_and_the_older_defaults_it_still_reads() {
    let json = br#"{"type":"command","schema":2,"command_id":"c1","target":"all",
        "action":{"type":"resume_partition","consumer_group":"g","topic":"t","partition":0},
        "issued_at_ms":1,"expires_at_ms":2,"issued_by":"ops","priority":"high"}"#;
    let Record::Command(c) = decode(json).unwrap() else {
        panic!("a command")
    };
    assert_eq!(c.target, Target::All);
    assert_eq!(c.action.name(), "resume_partition");
    let json = br#"{"type":"command","schema":1,"command_id":"c2","target":"all",
        "action":{"type":"pause_partition","consumer_group":"g","topic":"t","partition":0},
        "issued_at_ms":1,"expires_at_ms":2,"issued_by":"ops"}"#;
    let Record::Command(c) = decode(json).unwrap() else {
        panic!("a command")
    };
    assert!(matches!(
        c.action,
        Action::PausePartition { for_ms: None, .. }
    ));
}

#[test]
fn an_unknown_action_fails_to_decode_but_its_envelope_names_the_command() {
    let json = br#"{"type":"command","schema":3,"command_id":"c9","target":{"process":"p"},
        "action":{"type":"rewind_partition"},"issued_at_ms":1,"expires_at_ms":2,"issued_by":"x"}"#;
    let error = decode(json).unwrap_err().to_string();
    assert!(error.contains("rewind_partition"), "{error}");
    let envelope: Envelope = serde_json::from_slice(json).unwrap();
    assert_eq!(envelope.command_id, "c9");
    assert_eq!(envelope.target, Target::Process("p".into()));
    assert!(decode(b"not json").is_err());
}

#[test]
fn a_command_id_is_handled_once_while_its_command_lives() {
    let mut handled = Handled::default();
    assert!(handled.first_time("a", 100, 10));
    assert!(!handled.first_time("a", 100, 50), "the same id again");
    assert!(handled.first_time("b", 100, 50));
    // Past its expiry the id is forgotten: the command is acknowledged `expired` then.
    assert!(handled.first_time("a", 100, 101));
}
