//! The vendored libinjectionrs (`vendor/libinjectionrs`) looks SQL keywords up in a hash map
//! behind a bit-set filter instead of binary-searching its sorted table: every keyword, in any
//! case, and random words get exactly the binary search's answer, and the filter passes every
//! keyword while it stops most ordinary words.

use libinjectionrs::sqli::TokenType;
use libinjectionrs::sqli::sqli_data::{SQL_KEYWORDS, lookup_word, may_be_keyword};
use proptest::prelude::*;

/// libinjectionrs 0.1.1's lookup, as it was.
fn binary_search(word: &str) -> TokenType {
    let upper = word.to_ascii_uppercase();
    match SQL_KEYWORDS.binary_search_by(|k| k.word.cmp(&upper)).map(|i| SQL_KEYWORDS[i].token_type) {
        Ok(b'k') => TokenType::Keyword,
        Ok(b'f') => TokenType::Function,
        Ok(b'U') => TokenType::Union,
        Ok(b'E') => TokenType::Expression,
        Ok(b'T') => TokenType::Tsql,
        Ok(b't') => TokenType::SqlType,
        Ok(b'o') => TokenType::Operator,
        Ok(b'&') => TokenType::LogicOperator,
        Ok(b'v') => TokenType::Variable,
        Ok(b'1') => TokenType::Number,
        Ok(b'A') => TokenType::Collate,
        Ok(b'B') => TokenType::Group,
        Ok(b'F') => TokenType::Fingerprint,
        _ => TokenType::Bareword,
    }
}

#[test]
fn the_table_is_sorted_upper_case_and_without_duplicates() {
    assert!(SQL_KEYWORDS.len() > 9000);
    assert!(SQL_KEYWORDS.windows(2).all(|w| w[0].word < w[1].word));
    assert!(SQL_KEYWORDS.iter().all(|k| k.word == k.word.to_ascii_uppercase()));
}

#[test]
fn every_keyword_in_any_case_gets_the_binary_search_answer() {
    for k in SQL_KEYWORDS {
        for word in [k.word.to_owned(), k.word.to_ascii_lowercase(), format!("{}x", k.word), k.word[1..].to_owned()] {
            assert_eq!(lookup_word(&word), binary_search(&word), "{word:?}");
        }
        assert_ne!(lookup_word(k.word), TokenType::None);
    }
}

#[test]
fn the_filter_passes_every_non_bareword_keyword_and_stops_most_words() {
    let mut keywords = 0;
    // Words looked up as barewords (`FOR`) need not pass: not probing gives the same answer.
    for k in SQL_KEYWORDS.iter().filter(|k| lookup_word(k.word) != TokenType::Bareword) {
        for word in [k.word.to_owned(), k.word.to_ascii_lowercase()] {
            assert!(may_be_keyword(word.as_bytes()), "{word:?}");
        }
        keywords += 1;
    }
    assert!(keywords > 9000, "{keywords}");
    let words = "blue cotton shirt size batch widget number sturdy everyday neighbour please leave \
                 customer order delivery address street city country phone email note price"
        .split_whitespace()
        .collect::<Vec<_>>();
    let probed = words.iter().filter(|w| may_be_keyword(w.as_bytes())).count();
    assert!(probed * 4 <= words.len(), "{probed} of {} ordinary words pass the filter", words.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_words_get_the_binary_search_answer(word in "[a-zA-Z_0-9 ().|&<>=!~*@$é]{0,40}") {
        prop_assert_eq!(lookup_word(&word), binary_search(&word));
    }
}
