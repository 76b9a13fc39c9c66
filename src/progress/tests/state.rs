//! Best hearts, storage records and memory of the per-(student, subject) state.

use super::completion::complete;
use super::*;

#[test]
fn best_hearts_packs_two_values_per_byte() {
    let mut h = BestHearts::new();
    assert_eq!(h.get(7), 0);
    h.set(0, 3);
    h.set(1, 5);
    h.set(6, 15);
    assert_eq!((h.get(0), h.get(1), h.get(5), h.get(6)), (3, 5, 0, 15));
    assert_eq!(h.heap_bytes(), 4);
    h.set(1, 20);
    assert_eq!(h.get(1), 15, "saturated to a nibble");
    h.set(6, 0);
    assert_eq!(h.heap_bytes(), 1, "trailing zero bytes trimmed");
    h.set(1000, 0);
    assert_eq!(h.heap_bytes(), 1, "clearing an absent bit does not grow");
    assert_eq!(h.iter().collect::<Vec<_>>(), [(0, 3), (1, 15)]);
}

#[test]
fn progress_record_round_trips_through_bincode() {
    let view = realistic(120);
    let mut p = SubjectProgress::new();
    for (n, &node) in view.lessons.iter().take(45).enumerate() {
        let id = view.nodes[node as usize].id.to_string();
        complete(&view, &mut p, &id, (n % 5 + 1) as u8).expect("in order");
    }
    let record = p.to_record();
    let config = bincode::config::standard();
    let bytes = bincode::serde::encode_to_vec(&record, config).expect("encode");
    let (decoded, _): (ProgressRecord, usize) =
        bincode::serde::decode_from_slice(&bytes, config).expect("decode");
    assert_eq!(decoded, record);
    let back = SubjectProgress::from_record(&decoded).expect("valid");
    assert_eq!(back, p);
}

#[test]
fn progress_record_rejects_unknown_versions_and_corrupt_bitmaps() {
    let mut record = SubjectProgress::new().to_record();
    record.version = 2;
    assert!(matches!(
        SubjectProgress::from_record(&record),
        Err(RecordError::UnsupportedVersion(2))
    ));
    record.version = 1;
    record.passed = vec![1, 2, 3];
    assert!(matches!(
        SubjectProgress::from_record(&record),
        Err(RecordError::Bitmap(_))
    ));
}

/// Deterministic scattered bits (a 64-bit LCG), distinct, below `range`.
fn scattered(count: usize, range: u32) -> Vec<u32> {
    let mut seen = RoaringBitmap::new();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    while (seen.len() as usize) < count {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        seen.insert(((state >> 33) % u64::from(range)) as u32);
    }
    seen.iter().collect()
}

#[test]
fn memory_of_a_thousand_passed_lessons() {
    let mut in_order = SubjectProgress::new();
    for bit in 0..1000 {
        let d = CompletionDecision {
            bit_index: bit,
            is_first_completion: true,
            is_new_record: true,
            xp_earned: 0,
            best_hearts: 3,
            new_subject_xp: 0,
        };
        apply_completion(&mut in_order, &d, "x", 0);
    }
    let mut spread = SubjectProgress::new();
    for bit in scattered(1000, 5000) {
        spread.passed.insert(bit);
        spread.best_hearts.set(bit, 3);
    }
    spread.passed.optimize();
    let in_order_bitmap = in_order.passed.serialized_size();
    let spread_bitmap = spread.passed.serialized_size();
    println!(
        "memory: bitmap 1,000 in order = {in_order_bitmap} B, 1,000 scattered over 5,000 = \
         {spread_bitmap} B; best hearts in order = {} B, scattered = {} B",
        in_order.best_hearts.heap_bytes(),
        spread.best_hearts.heap_bytes()
    );
    assert!(
        in_order_bitmap <= 150,
        "in-order bitmap {in_order_bitmap} B > 150 B"
    );
    assert_eq!(in_order.best_hearts.heap_bytes(), 500);
    assert_eq!(in_order.heap_bytes(), in_order_bitmap + 500);
}
