//! The GPT-2 byte-level BPE: tiktoken's `r50k_base` (the `gpt2` encoding of OpenAI's
//! `tiktoken_ext/openai_public.py`, the same ranks as GPT-2's `encoder.json`/`vocab.bpe`),
//! through `tiktoken-rs`, whose vocabulary is compiled in, so nothing is downloaded.
//! Checked against Python tiktoken and GPT-2's own `encoder.py` algorithm by
//! `tests/tokenizer_golden.rs` (goldens by `scripts/golden_tokenizer.py`).
use anyhow::{anyhow, Context, Result};
use tiktoken_rs::CoreBPE;

/// GPT-2's tokenizer: ordinary text to token ids and back.
pub struct Gpt2Bpe {
    bpe: CoreBPE,
}

impl Gpt2Bpe {
    /// `<|endoftext|>`, which nanoGPT's `fineweb.py` puts before every document.
    pub const EOT: u32 = 50256;
    /// Token ids are `0..VOCAB`: 50 000 merges, 256 bytes and `<|endoftext|>`.
    pub const VOCAB: usize = 50257;

    pub fn new() -> Result<Self> {
        let bpe = tiktoken_rs::r50k_base().context("cannot build the GPT-2 BPE (r50k_base)")?;
        Ok(Gpt2Bpe { bpe })
    }

    /// The ids of `text` as ordinary text: `<|endoftext|>` written in it is five ordinary
    /// tokens, never [`Self::EOT`] (tiktoken's `encode_ordinary`).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.bpe.encode_ordinary(text)
    }

    /// The text of `ids`; an id outside the vocabulary, or ids whose bytes are not UTF-8
    /// (a character cut between tokens), are errors.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= Self::VOCAB) {
            return Err(anyhow!(
                "token id {bad} is outside the GPT-2 vocabulary (0..{})",
                Self::VOCAB
            ));
        }
        self.bpe.decode(ids)
    }

    /// The text of `ids`, bytes cut mid-character read as U+FFFD (how `transformers`
    /// decodes); ids outside the vocabulary are skipped.
    pub fn decode_lossy(&self, ids: &[u32]) -> String {
        let known: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&id| (id as usize) < Self::VOCAB)
            .collect();
        let bytes = self
            .bpe
            .decode_bytes(&known)
            .expect("every id below VOCAB has bytes");
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Cuts `text` into pieces of about `target` bytes (or more) that encode, one by one, to
/// the tokens of the whole, so one long document can be tokenised in parallel.
///
/// A cut goes after a `\n` that follows a non-space character and precedes one. GPT-2's
/// pre-tokenizer pattern (`'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|
/// \s++$|\s+(?!\S)|\s`) makes that `\n` a piece of its own in the whole text (`\s`), and
/// at the end of the left part (`\s++$`); only whitespace pieces hold a `\n`, so no piece
/// crosses the cut, and BPE merges stay inside pieces. `\s` is Unicode White_Space, as
/// `char::is_whitespace`. Text without such a place is one piece.
pub fn split_for_parallel(text: &str, target: usize) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut start = 0;
    while text.len() - start > target {
        let Some(cut) = (start + target.max(1)..text.len()).find(|&i| {
            bytes[i - 1] == b'\n'
                && starts_non_space(&text[i..])
                && text[..i - 1]
                    .chars()
                    .next_back()
                    .is_some_and(|c| !c.is_whitespace())
        }) else {
            break;
        };
        pieces.push(&text[start..cut]);
        start = cut;
    }
    pieces.push(&text[start..]);
    pieces
}

fn starts_non_space(s: &str) -> bool {
    s.chars().next().is_some_and(|c| !c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hello_world() {
        let bpe = Gpt2Bpe::new().unwrap();
        assert_eq!(bpe.encode("Hello world"), [15496, 995]);
        assert_eq!(bpe.decode(&[15496, 995]).unwrap(), "Hello world");
        assert_eq!(bpe.decode(&[Gpt2Bpe::EOT]).unwrap(), "<|endoftext|>");
        assert!(!bpe.encode("<|endoftext|>").contains(&Gpt2Bpe::EOT));
    }

    #[test]
    fn bad_ids_are_errors() {
        let bpe = Gpt2Bpe::new().unwrap();
        let e = bpe.decode(&[15496, 50257]).unwrap_err().to_string();
        assert!(e.contains("50257"), "{e}");
        // Tokens 127 and 102 are the bytes 0xC3 and 0xA9 (GPT-2's `bytes_to_unicode`
        // order): "é" together, the first alone is not UTF-8.
        assert_eq!(bpe.decode(&[127, 102]).unwrap(), "é");
        assert!(bpe.decode(&[127]).is_err());
    }

    fn encoded_in_pieces(bpe: &Gpt2Bpe, text: &str, target: usize) -> (Vec<u32>, usize) {
        let pieces = split_for_parallel(text, target);
        assert_eq!(pieces.concat(), text);
        (
            pieces.iter().flat_map(|p| bpe.encode(p)).collect(),
            pieces.len(),
        )
    }

    #[test]
    fn pieces_encode_to_the_whole() {
        let bpe = Gpt2Bpe::new().unwrap();
        let text = "Line one.\nLine two  \n\n  indented\n\tTab\nend \n\u{a0}nbsp\nwörd\n\n\n\nx\n";
        for target in [0, 1, 3, 8, 20, 1000] {
            let (ids, n) = encoded_in_pieces(&bpe, text, target);
            assert_eq!(ids, bpe.encode(text), "target {target}");
            if target <= 8 {
                assert!(n > 3, "target {target}: {n} pieces");
            }
        }
    }

    static BPE: std::sync::LazyLock<Gpt2Bpe> = std::sync::LazyLock::new(|| Gpt2Bpe::new().unwrap());

    proptest! {
        #[test]
        fn random_text_in_pieces(
            chars in proptest::collection::vec(
                prop::sample::select(vec!['a', 'Z', '7', '.', '\'', ' ', ' ', '\n', '\n', '\t', '\r', '\u{a0}', '\u{2028}', 'é', '語', '😀']),
                0..200),
            target in 0usize..40,
        ) {
            let text: String = chars.into_iter().collect();
            let (ids, _) = encoded_in_pieces(&BPE, &text, target);
            prop_assert_eq!(ids, BPE.encode(&text));
        }
    }
}
