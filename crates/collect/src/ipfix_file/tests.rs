//! IPFIX files written to a temporary directory and read back.

use super::*;

const DOMAIN: u32 = 7;
const TEMPLATE_ID: u16 = 256;

/// An IPFIX message header (RFC 7011 section 3.1) followed by `sets`.
fn message(export_time: u32, sequence: u32, domain: u32, sets: &[u8]) -> Vec<u8> {
    let mut m = 10u16.to_be_bytes().to_vec(); // version
    m.extend(((HEADER_LEN + sets.len()) as u16).to_be_bytes()); // length
    m.extend(export_time.to_be_bytes()); // export time
    m.extend(sequence.to_be_bytes()); // sequence number
    m.extend(domain.to_be_bytes()); // observation domain id
    m.extend(sets);
    m
}

/// A template set defining template 256: sourceIPv4Address (8), octetDeltaCount (1).
fn template_set() -> Vec<u8> {
    let mut s = 2u16.to_be_bytes().to_vec(); // set id 2: template set
    s.extend(16u16.to_be_bytes()); // set length
    s.extend(TEMPLATE_ID.to_be_bytes()); // template id
    s.extend(2u16.to_be_bytes()); // field count
    s.extend([0, 8, 0, 4]); // sourceIPv4Address, 4 bytes
    s.extend([0, 1, 0, 8]); // octetDeltaCount, 8 bytes
    s
}

/// A data set with one record of template 256.
fn data_set(octets: u64) -> Vec<u8> {
    let mut s = TEMPLATE_ID.to_be_bytes().to_vec(); // set id: the template
    s.extend(16u16.to_be_bytes()); // set length: 4 + 12
    s.extend([192, 0, 2, 1]); // sourceIPv4Address
    s.extend(octets.to_be_bytes()); // octetDeltaCount
    s
}

fn template_message() -> Vec<u8> {
    message(1_700_000_000, 0, DOMAIN, &template_set())
}

/// Data message `i`: one record, so the sequence number counts messages.
fn data_message(i: u32) -> Vec<u8> {
    message(1_700_000_000 + i, i, DOMAIN, &data_set(u64::from(i)))
}

fn read_file(path: &Path) -> Vec<Vec<u8>> {
    IpfixFileReader::open(path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn is_template_message(m: &[u8]) -> bool {
    m[16..18] == 2u16.to_be_bytes()
}

#[test]
fn size_rotation_splits_messages_and_reads_back_identical() {
    let dir = tempfile::tempdir().unwrap();
    // Template message 32 bytes, data messages 32 bytes: three data messages per file.
    let policy = RotationPolicy {
        max_bytes: Some(4 * 32),
        ..RotationPolicy::default()
    };
    let mut writer = IpfixFileWriter::new(dir.path(), policy).unwrap();
    writer.set_templates(vec![template_message()]).unwrap();
    let sent: Vec<Vec<u8>> = (0..10).map(data_message).collect();
    for m in &sent {
        writer.write_message(m).unwrap();
    }
    writer.close().unwrap();
    let files = files_in(dir.path());
    assert_eq!(files, writer.finished_files());
    assert_eq!(files.len(), 4);
    let mut received = Vec::new();
    for file in &files {
        assert!(std::fs::metadata(file).unwrap().len() <= 4 * 32);
        received.extend(
            read_file(file)
                .into_iter()
                .filter(|m| !is_template_message(m)),
        );
    }
    assert_eq!(received, sent);
}

#[test]
fn every_file_starts_with_the_templates_renumbered_for_the_next_message() {
    let dir = tempfile::tempdir().unwrap();
    let policy = RotationPolicy {
        max_bytes: Some(3 * 32),
        ..RotationPolicy::default()
    };
    let mut writer = IpfixFileWriter::new(dir.path(), policy).unwrap();
    writer.set_templates(vec![template_message()]).unwrap();
    for i in 0..6 {
        writer.write_message(&data_message(i)).unwrap();
    }
    writer.close().unwrap();
    for file in files_in(dir.path()) {
        let messages = read_file(&file);
        let (first, next) = (&messages[0], &messages[1]);
        assert!(
            is_template_message(first),
            "{} does not start with templates",
            file.display()
        );
        assert_eq!(first[16..], template_message()[16..], "same template set");
        assert_eq!(
            first[4..12],
            next[4..12],
            "export time and sequence of the next message"
        );
    }
}

#[test]
fn templates_of_other_domains_are_not_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = IpfixFileWriter::new(dir.path(), RotationPolicy::default()).unwrap();
    let other = message(1_700_000_000, 0, DOMAIN + 1, &template_set());
    writer
        .set_templates(vec![template_message(), other])
        .unwrap();
    writer.write_message(&data_message(0)).unwrap();
    writer.write_message(&data_message(1)).unwrap();
    writer.close().unwrap();
    let messages = read_file(&files_in(dir.path())[0]);
    assert_eq!(messages.len(), 3, "one template message, two data messages");
}

#[test]
fn export_time_age_rotates_and_names_files_by_export_time() {
    let dir = tempfile::tempdir().unwrap();
    let policy = RotationPolicy {
        max_age: Some(RotationAge::ExportTime(60)),
        prefix: "flows".to_owned(),
        ..RotationPolicy::default()
    };
    let mut writer = IpfixFileWriter::new(dir.path(), policy).unwrap();
    // 1_700_000_000 is 2023-11-14 22:13:20 UTC; export times 0, 30, 60 and 90 s later.
    for i in 0..4 {
        writer
            .write_message(&message(1_700_000_000 + 30 * i, i, 1, &data_set(1)))
            .unwrap();
    }
    writer.close().unwrap();
    let names: Vec<String> = files_in(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "flows-20231114-221320-0000.ipfix",
            "flows-20231114-221420-0001.ipfix"
        ]
    );
}

#[test]
fn open_file_has_only_a_partial_name_until_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = IpfixFileWriter::new(dir.path(), RotationPolicy::default()).unwrap();
    writer.write_message(&data_message(0)).unwrap();
    writer.flush().unwrap();
    let files = files_in(dir.path());
    assert_eq!(files.len(), 1);
    assert!(files[0].to_string_lossy().ends_with(".ipfix.partial"));
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().len(),
        32,
        "flushed bytes are visible"
    );
    drop(writer);
    let files = files_in(dir.path());
    assert!(
        files[0].to_string_lossy().ends_with(".ipfix"),
        "dropping the writer closes"
    );
}

#[test]
fn writer_refuses_bytes_that_are_not_one_whole_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = IpfixFileWriter::new(dir.path(), RotationPolicy::default()).unwrap();
    let mut two = data_message(0);
    two.extend(data_message(1));
    let mut v9 = data_message(0);
    v9[..2].copy_from_slice(&9u16.to_be_bytes());
    for bad in [two, v9, vec![0, 10, 0]] {
        assert!(matches!(
            writer.write_message(&bad),
            Err(FileError::InvalidMessage { .. })
        ));
    }
    assert!(files_in(dir.path()).is_empty());
}

#[test]
fn truncated_file_yields_good_messages_then_an_error_at_the_cut_message() {
    let mut bytes = [data_message(0), data_message(1), data_message(2)].concat();
    bytes.truncate(2 * 32 + 20);
    let results: Vec<_> = IpfixFileReader::from_reader(&bytes[..], "cut.ipfix").collect();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().unwrap(), &data_message(0));
    assert_eq!(results[1].as_ref().unwrap(), &data_message(1));
    let err = results[2].as_ref().unwrap_err();
    assert!(matches!(
        err,
        FileError::Truncated {
            offset: 64,
            needed: 32,
            got: 20,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "cut.ipfix: truncated message at offset 64: 20 of 32 bytes"
    );
}

#[test]
fn bad_header_ends_the_file_with_its_offset() {
    let mut bad = data_message(1);
    bad[2..4].copy_from_slice(&8u16.to_be_bytes()); // length shorter than the header
    let bytes = [data_message(0), bad].concat();
    let results: Vec<_> = IpfixFileReader::from_reader(&bytes[..], "bad.ipfix").collect();
    assert_eq!(results.len(), 2);
    assert!(matches!(
        results[1],
        Err(FileError::BadHeader { offset: 32, .. })
    ));
}

#[test]
fn partial_header_at_end_is_truncation() {
    let bytes = [data_message(0), vec![0, 10, 0]].concat();
    let results: Vec<_> = IpfixFileReader::from_reader(&bytes[..], "x").collect();
    assert!(matches!(
        results[1],
        Err(FileError::Truncated {
            needed: 16,
            got: 3,
            ..
        })
    ));
}

#[test]
fn utc_stamp_formats_date_and_time() {
    assert_eq!(utc_stamp(0), "19700101-000000");
    assert_eq!(utc_stamp(1_700_000_000), "20231114-221320");
}
