//! The GPT-2 BPE against Python tiktoken's `r50k_base` and GPT-2's own `encoder.py`
//! algorithm, which agree on every case (goldens by `scripts/golden_tokenizer.py`):
//! unicode, whitespace runs, numbers, contractions, `<|endoftext|>` as text, random text.
use pisa::data::tokenizer::{split_for_parallel, Gpt2Bpe};

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
}

fn cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/tokenizer/gpt2.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn ids_match_tiktoken_and_gpt2() {
    let bpe = Gpt2Bpe::new().unwrap();
    let cases = cases();
    assert!(cases.len() >= 15);
    for case in &cases {
        assert_eq!(bpe.encode(&case.text), case.ids, "{:?}", case.text);
        assert_eq!(bpe.decode(&case.ids).unwrap(), case.text);
        assert!(case.ids.iter().all(|&id| (id as usize) < Gpt2Bpe::VOCAB));
    }
    assert_eq!(cases[0].text, "Hello world");
    assert_eq!(cases[0].ids, [15496, 995]);
}

/// Cut into pieces for parallel tokenisation, every case still encodes to its golden ids.
#[test]
fn pieces_give_the_golden_ids() {
    let bpe = Gpt2Bpe::new().unwrap();
    for case in cases() {
        for target in [1, 16, 200] {
            let ids: Vec<u32> = split_for_parallel(&case.text, target)
                .iter()
                .flat_map(|p| bpe.encode(p))
                .collect();
            assert_eq!(ids, case.ids, "{:?} in pieces of {target}", case.text);
        }
    }
}
