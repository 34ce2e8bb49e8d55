//! Any bytes as a line of a PBX CDR file, a deactivation list, a reassigned-number answer
//! file or an HLR result file, with and without a header line first: reading never panics,
//! and an accepted line is a bounded, final event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use numcheck_core::connectors::cdr::{AsteriskCdr, FreeswitchCdr, parse_utc_offset};
use numcheck_core::connectors::lists::{DeactivationList, HlrLines, ReassignedAnswers};
use numcheck_core::connectors::{Event, LineFormat, MAX_FIELD};

fn check(event: Event) {
    assert!(!event.number.is_empty() && event.number.len() <= MAX_FIELD);
    assert!(event.raw_code.len() <= MAX_FIELD);
    assert!(
        event
            .message_id
            .as_ref()
            .is_none_or(|m| m.len() <= MAX_FIELD + 64)
    );
    assert!(event.final_state);
}

fn run(reader: &mut dyn LineFormat, header: Option<&[u8]>, data: &[u8]) {
    if let Some(h) = header {
        let _ = reader.line(h);
    }
    if let Ok(Some(event)) = reader.line(data) {
        check(event);
    }
}

fuzz_target!(|data: &[u8]| {
    // A switch's `utc_offset` setting.
    if let Ok(offset) = parse_utc_offset(&String::from_utf8_lossy(data)) {
        assert!(offset.local_minus_utc().abs() < 86_400);
    }
    let fs_header: &[u8] = b"uuid,destination_number,start_stamp,answer_stamp,end_stamp,billsec,hangup_cause,sip_term_status,sip_reason,proto_specific_hangup_cause";
    let ast_header: &[u8] =
        b"calldate,src,dst,disposition,billsec,uniqueid,linkedid,HANGUPCAUSE,DIALSTATUS";
    for header in [None, Some(fs_header)] {
        run(&mut FreeswitchCdr::default(), header, data);
    }
    for header in [None, Some(ast_header)] {
        run(&mut AsteriskCdr::default(), header, data);
    }
    for header in [None, Some(&b"number,date"[..])] {
        run(&mut DeactivationList::new(), header, data);
    }
    for header in [None, Some(&b"number,date,answer"[..])] {
        run(&mut ReassignedAnswers::new(), header, data);
    }
    for header in [None, Some(&b"number,status,data_source,checked_at,id"[..])] {
        run(&mut HlrLines::new(), header, data);
    }
});
