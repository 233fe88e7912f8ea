use super::*;

fn roundtrip(ty: &str, v: &Value) {
    let t = Type::parse(ty).unwrap();
    assert_eq!(v.type_of(), t);
    let bytes = v.to_bytes();
    assert_eq!(&Value::from_bytes(&t, &bytes).unwrap(), v, "{ty}");
}

#[test]
fn commit_from_ostree_decodes_and_reencodes_identically() {
    // A commit written by ostree 2022.7 (`commit -b foo` of a one-file tree).
    let hex = "6f73747265652e7265662d62696e64696e67000000000000666f6f00040061731321000000000000000000006b086d8d064d062997ffb274f15a80635d652811a48421d78c483b493a531b6b50d7f6a9446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488502423222222";
    let bytes = hex::decode(hex).unwrap();
    let ty = Type::parse("(a{sv}aya(say)sstayay)").unwrap();
    let v = Value::from_bytes(&ty, &bytes).unwrap();
    assert_eq!(v.to_bytes(), bytes);
    let printed = v.print(true);
    assert!(
        printed
            .starts_with("({'ostree.ref-binding': <['foo']>}, @ay [], @a(say) [], '', '', uint64 ")
    );
}

#[test]
fn roundtrips() {
    roundtrip(
        "(uuua(ayay))",
        &Value::Tuple(vec![
            Value::Uint32(0),
            Value::Uint32(0),
            Value::Uint32(0o40755u32.to_be()),
            Value::Array(
                Type::parse("(ayay)").unwrap(),
                vec![Value::Tuple(vec![
                    Value::Bytes(b"user.a\0".to_vec()),
                    Value::Bytes(b"x".to_vec()),
                ])],
            ),
        ]),
    );
    roundtrip("()", &Value::Tuple(vec![]));
    roundtrip(
        "ms",
        &Value::Maybe(Type::String, Some(Box::new(Value::str("x")))),
    );
    roundtrip("mu", &Value::Maybe(Type::Uint32, None));
    roundtrip("v", &Value::Variant(Box::new(Value::Uint64(7))));
    roundtrip("as", &Value::strv(&["a", "bb", ""]));
}

#[test]
fn large_array_uses_wider_offsets() {
    let items: Vec<String> = (0..200).map(|i| format!("name-{i}")).collect();
    let v = Value::strv(&items);
    let bytes = v.to_bytes();
    assert!(bytes.len() > 255);
    roundtrip("as", &v);
}

#[test]
fn malformed_inputs_error_not_panic() {
    let ty = Type::parse("(a{sv}aya(say)sstayay)").unwrap();
    for len in 0..64 {
        let data = vec![0xffu8; len];
        let _ = Value::from_bytes(&ty, &data);
    }
    assert!(Value::from_bytes(&Type::String, b"abc").is_err());
    assert!(Value::from_bytes(&Type::Bool, &[2]).is_err());
}

#[test]
fn text_roundtrip() {
    for (text, printed) in [
        ("'hello'", "'hello'"),
        ("42", "42"),
        ("uint64 5", "uint64 5"),
        ("true", "true"),
        ("['a', 'b']", "['a', 'b']"),
        ("@as []", "@as []"),
        ("{'k': <1>}", "{'k': <1>}"),
        ("(1, 'x')", "(1, 'x')"),
        ("b'abc'", "b'abc'"),
        ("3.5", "3.5"),
        ("\"it's\"", "\"it's\""),
    ] {
        let v = text::parse(text, None).unwrap();
        assert_eq!(v.print(true), printed, "{text}");
    }
}

#[test]
fn doubles_print_like_glib() {
    assert_eq!(Value::Double(1.0).print(true), "1.0");
    assert_eq!(Value::Double(0.1).print(true), "0.10000000000000001");
    assert_eq!(Value::Double(1e20).print(true), "1e+20");
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<u8>().prop_map(Value::Byte),
            any::<i16>().prop_map(Value::Int16),
            any::<u32>().prop_map(Value::Uint32),
            any::<u64>().prop_map(Value::Uint64),
            "[a-z\u{e9}\u{4e2d} ]{0,12}".prop_map(Value::String),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
                inner.clone().prop_map(|v| Value::Variant(Box::new(v))),
                (inner.clone(), 0usize..5).prop_map(|(v, n)| match v {
                    Value::Byte(b) => Value::Bytes(vec![b; n]),
                    v => Value::Array(v.type_of(), vec![v; n]),
                }),
                inner.prop_map(|v| Value::Maybe(v.type_of(), Some(Box::new(v)))),
            ]
        })
    }

    proptest! {
        #[test]
        fn encode_decode_roundtrip(v in value()) {
            let ty = v.type_of();
            let bytes = v.to_bytes();
            prop_assert_eq!(Value::from_bytes(&ty, &bytes).unwrap(), v);
        }

        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            for ty in ["(a{sv}aya(say)sstayay)", "(a(say)a(sayay))", "(uuua(ayay))", "(tuuuusa(ayay))", "v", "a{sv}"] {
                let _ = Value::from_bytes(&Type::parse(ty).unwrap(), &data);
            }
        }
    }
}
