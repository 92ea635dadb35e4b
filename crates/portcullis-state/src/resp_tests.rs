use super::*;

#[test]
fn a_command_is_an_array_of_bulk_strings() {
    let mut buf = Vec::new();
    array_header(&mut buf, 3);
    bulk(&mut buf, b"EVALSHA");
    bulk_parts(&mut buf, &[b"p:", b"rl:", b"key"]);
    bulk_u64(&mut buf, 1_700_000_000_000_000);
    assert_eq!(buf, b"*3\r\n$7\r\nEVALSHA\r\n$8\r\np:rl:key\r\n$16\r\n1700000000000000\r\n");
    let mut digits = [0; 20];
    assert_eq!(decimal(&mut digits, 0), b"0");
    assert_eq!(decimal(&mut digits, u64::MAX), b"18446744073709551615");
}

#[test]
fn every_reply_kind_parses_with_its_length() {
    let wire = b"*4\r\n:1\r\n$16\r\n1700000000000000\r\n$-1\r\n*2\r\n+OK\r\n-NOSCRIPT No matching script\r\n:7\r\n";
    let (reply, used) = parse(wire).expect("valid").expect("complete");
    assert_eq!(used, wire.len() - 4, "the trailing :7 is the next reply");
    let Reply::Array(items) = &reply else { panic!("{reply:?}") };
    assert_eq!(items[0].as_u64(), Some(1));
    assert_eq!(items[1].as_u64(), Some(1_700_000_000_000_000));
    assert_eq!(items[2], Reply::Nil);
    let Reply::Array(inner) = &items[3] else { panic!("{reply:?}") };
    assert_eq!(inner[0], Reply::Status("OK".into()));
    assert!(inner[1].is_noscript());
    assert_eq!(parse(&wire[used..]), Ok(Some((Reply::Int(7), 4))));
    assert_eq!(Reply::Int(-1).as_u64(), None, "a negative count is not a count");
}

#[test]
fn half_a_reply_asks_for_more_at_every_cut() {
    let wire = b"*3\r\n:1\r\n$5\r\nhello\r\n*1\r\n$0\r\n\r\n";
    for cut in 0..wire.len() {
        assert_eq!(parse(&wire[..cut]), Ok(None), "cut at {cut}");
    }
    assert!(parse(wire).expect("valid").is_some());
}

#[test]
fn broken_or_hostile_replies_are_protocol_errors() {
    let bad: &[&[u8]] = &[
        b"?\r\n",
        b":12a\r\n",
        b":1\n",
        b"$3\r\nabcde\r\n",
        b"$-2\r\n",
        b"$9999999999\r\n",
        b"*99999999\r\n",
        b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
        b"+\xff\r\n",
        b"\r\n",
    ];
    for wire in bad {
        assert_eq!(parse(wire), Err(ProtocolError), "{:?}", String::from_utf8_lossy(wire));
    }
    // A line that never ends is refused once it is longer than any reply could be.
    let endless = vec![b'+'; MAX_LINE + 10];
    assert_eq!(parse(&endless), Err(ProtocolError));
    assert_eq!(parse(&endless[..100]), Ok(None));
}

#[test]
fn random_bytes_never_panic_and_never_claim_more_than_they_hold() {
    // xorshift: a fixed, reproducible stream of inputs biased towards RESP's bytes.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"*$:+-\r\n0123456789-1ab";
    for _ in 0..20_000 {
        let len = (next() % 48) as usize;
        let input: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
        if let Ok(Some((_, used))) = parse(&input) {
            assert!(used <= input.len());
        }
    }
}
