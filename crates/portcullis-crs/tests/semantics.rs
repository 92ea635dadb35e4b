//! SecLang semantics CRS relies on, each shown on a small rule file: anomaly scoring through
//! setvar and macros, chains with captures, skipAfter markers, ctl removals, counting,
//! target exclusions and the body processors.

use portcullis_crs::{CrsRules, CrsVerdict, ExcludedTarget, Exclusion, Member, Transaction};
use std::path::PathBuf;

fn load(name: &str, rules: &str) -> CrsRules {
    let dir = std::env::temp_dir().join(format!("portcullis-crs-sem-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("rules")).expect("mkdir");
    std::fs::write(
        dir.join("crs-setup.conf"),
        "SecAction \"id:900990,phase:1,nolog,pass,t:none,setvar:tx.crs_setup_version=334\"\n",
    )
    .expect("setup");
    std::fs::write(dir.join("rules").join("REQUEST-100-T.conf"), rules).expect("rules");
    std::fs::write(dir.join("rules").join("words.data"), "# comment\nbadword\nevil thing\n").expect("data");
    let rules = CrsRules::load(&dir, 1, 5).unwrap_or_else(|e| panic!("{e:?}"));
    let _ = std::fs::remove_dir_all(PathBuf::from(&dir));
    rules
}

fn eval(rules: &CrsRules, method: &str, uri: &str, headers: &[(&str, &[u8])], body: Option<&[u8]>) -> CrsVerdict {
    rules.evaluate(&Transaction {
        method,
        uri,
        protocol: "HTTP/1.1",
        client_ip: "198.51.100.7".parse().expect("ip"),
        headers,
        body,
    })
}

fn ids(v: &CrsVerdict) -> Vec<u32> {
    v.matches.iter().map(|m| m.rule_id).collect()
}

const SCORE: &str = "setvar:'tx.anomaly_score=+%{tx.critical_anomaly_score}'";

fn base() -> String {
    "SecAction \"id:1,phase:1,pass,nolog,setvar:tx.critical_anomaly_score=5,setvar:tx.anomaly_score=0\"\n".to_string()
}

#[test]
fn scoring_uses_setvar_macros_and_the_threshold() {
    let r = load(
        "score",
        &format!(
            "{}SecRule ARGS \"@rx (?i)attack\" \"id:10,phase:2,block,t:none,t:lowercase,severity:'CRITICAL',msg:'a',{SCORE}\"\nSecRule ARGS:note \"@contains odd\" \"id:11,phase:2,pass,severity:'NOTICE',setvar:'tx.anomaly_score=+2'\"\n",
            base()
        ),
    );
    let v = eval(&r, "GET", "/x?q=ATTACK", &[], None);
    assert_eq!((v.score, v.blocked), (5, true));
    assert_eq!(v.matches[0].severity, 5);
    let v = eval(&r, "GET", "/x?note=odd", &[], None);
    assert_eq!((v.score, v.blocked, ids(&v)), (2, false, vec![11]));
    let v = eval(&r, "GET", "/x?other=odd", &[], None);
    assert_eq!((v.score, v.blocked), (0, false), "ARGS:note selects only that argument");
}

#[test]
fn chains_match_only_when_every_link_does_and_captures_flow_down() {
    let r = load(
        "chain",
        &format!(
            "{}SecRule REQUEST_HEADERS:X-Kind \"@rx ^(\\w+)$\" \"id:20,phase:1,block,capture,severity:'CRITICAL',chain,{SCORE}\"\n    SecRule ARGS:kind \"@streq %{{tx.1}}\" \"t:none\"\n",
            base()
        ),
    );
    let h: [(&str, &[u8]); 1] = [("X-Kind", b"apple")];
    assert!(eval(&r, "GET", "/x?kind=apple", &h, None).blocked);
    assert!(!eval(&r, "GET", "/x?kind=pear", &h, None).blocked);
    assert!(!eval(&r, "GET", "/x?kind=apple", &[], None).blocked);
}

#[test]
fn skip_after_jumps_to_the_marker_in_the_same_phase() {
    let r = load(
        "skip",
        &format!(
            "{}SecRule ARGS:safe \"@eq 1\" \"id:30,phase:2,pass,nolog,skipAfter:END-T\"\nSecRule ARGS \"@rx evil\" \"id:31,phase:2,block,severity:'CRITICAL',{SCORE}\"\nSecMarker \"END-T\"\nSecRule ARGS \"@rx worse\" \"id:32,phase:2,block,severity:'CRITICAL',{SCORE}\"\n",
            base()
        ),
    );
    assert!(eval(&r, "GET", "/x?a=evil", &[], None).blocked);
    assert!(!eval(&r, "GET", "/x?a=evil&safe=1", &[], None).blocked);
    assert_eq!(ids(&eval(&r, "GET", "/x?a=worse&safe=1", &[], None)), vec![32]);
}

#[test]
fn ctl_removes_rules_and_targets_for_this_request_only() {
    let r = load(
        "ctl",
        &format!(
            "{}SecRule REQUEST_FILENAME \"@beginsWith /admin\" \"id:40,phase:1,pass,nolog,ctl:ruleRemoveById=41\"\nSecRule REQUEST_FILENAME \"@beginsWith /wiki\" \"id:42,phase:1,pass,nolog,ctl:ruleRemoveTargetById=41;ARGS:text\"\nSecRule ARGS \"@pm badword other\" \"id:41,phase:2,block,severity:'CRITICAL',{SCORE}\"\n",
            base()
        ),
    );
    assert!(eval(&r, "GET", "/api?text=BadWord", &[], None).blocked, "@pm ignores case");
    assert!(!eval(&r, "GET", "/admin?text=badword", &[], None).blocked);
    assert!(!eval(&r, "GET", "/wiki?text=badword", &[], None).blocked);
    assert!(eval(&r, "GET", "/wiki?title=badword", &[], None).blocked);
}

#[test]
fn counting_exclusions_and_phrase_files() {
    let r = load(
        "count",
        &format!(
            "{}SecRule &ARGS \"@gt 2\" \"id:50,phase:2,block,severity:'CRITICAL',{SCORE}\"\nSecRule REQUEST_COOKIES|!REQUEST_COOKIES:/^__utm/ \"@pmFromFile words.data\" \"id:51,phase:1,block,severity:'CRITICAL',{SCORE}\"\n",
            base()
        ),
    );
    assert!(!eval(&r, "GET", "/x?a=1&b=2", &[], None).blocked);
    assert_eq!(ids(&eval(&r, "GET", "/x?a=1&b=2&c=3", &[], None)), vec![50]);
    let c: [(&str, &[u8]); 1] = [("Cookie", b"__utma=badword; sid=1")];
    assert!(!eval(&r, "GET", "/x", &c, None).blocked, "an excluded cookie is not inspected");
    let c: [(&str, &[u8]); 1] = [("Cookie", b"__utma=1; sid=an evil thing")];
    assert!(eval(&r, "GET", "/x", &c, None).blocked);
}

#[test]
fn body_processors_fill_args_from_form_json_multipart_and_xml() {
    let r = load(
        "body",
        &format!(
            "{}SecRule ARGS|XML:/* \"@rx hostile\" \"id:60,phase:2,block,severity:'CRITICAL',{SCORE}\"\nSecRule REQBODY_PROCESSOR \"@streq JSON\" \"id:61,phase:2,pass,severity:'NOTICE'\"\n",
            base()
        ),
    );
    let form: [(&str, &[u8]); 1] = [("Content-Type", b"application/x-www-form-urlencoded")];
    assert!(eval(&r, "POST", "/x", &form, Some(b"a=1&b=host%69le")).blocked);
    let json: [(&str, &[u8]); 1] = [("Content-Type", b"application/json; charset=utf-8")];
    let v = eval(&r, "POST", "/x", &json, Some(br#"{"a":{"b":["ok","\u0068ostile"]}}"#));
    assert!(v.blocked);
    assert!(ids(&v).contains(&61));
    let mp: [(&str, &[u8]); 1] = [("Content-Type", b"multipart/form-data; boundary=XyZ")];
    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhostile words\r\n--XyZ--\r\n";
    assert!(eval(&r, "POST", "/x", &mp, Some(body)).blocked);
    let xml: [(&str, &[u8]); 1] = [("Content-Type", b"application/xml")];
    assert!(eval(&r, "POST", "/x", &xml, Some(b"<a><b>ho&#115;tile</b></a>")).blocked);
    assert!(!eval(&r, "POST", "/x", &xml, Some(b"<a><b>friendly</b></a>")).blocked);
}

#[test]
fn update_target_by_id_excludes_a_target_after_the_rule_is_loaded() {
    let r = load(
        "update",
        &format!(
            "{}SecRule REQUEST_COOKIES|ARGS \"@rx evil\" \"id:70,phase:2,block,severity:'CRITICAL',{SCORE}\"\nSecRuleUpdateTargetById 70 \"!REQUEST_COOKIES:/^_ga(?:_\\w+)?$/\"\n",
            base()
        ),
    );
    let c: [(&str, &[u8]); 1] = [("Cookie", b"_ga_X1=evil")];
    assert!(!eval(&r, "GET", "/x", &c, None).blocked);
    let c: [(&str, &[u8]); 1] = [("Cookie", b"sid=evil")];
    assert!(eval(&r, "GET", "/x", &c, None).blocked);
}

#[test]
fn caller_exclusions_remove_a_target_or_a_rule_for_one_request() {
    let r = load(
        "caller",
        &format!(
            "{}SecRule ARGS|REQUEST_HEADERS \"@rx evil\" \"id:80,phase:2,block,severity:'CRITICAL',{SCORE}\"\nSecRule ARGS \"@rx bad\" \"id:81,phase:2,block,severity:'CRITICAL',{SCORE}\"\n",
            base()
        ),
    );
    let target = |collection: &str, member: Member| {
        vec![Exclusion { rules: vec![80], target: Some(ExcludedTarget { collection: collection.into(), member }) }]
    };
    let q = target("ARGS", Member::Named("Q".into()));
    assert!(!with(&r, &q, "/x?q=evil", &[], None).blocked, "ARGS:q is excluded for rule 80, names without case");
    assert!(with(&r, &q, "/x?p=evil", &[], None).blocked, "another argument is still inspected");
    assert!(with(&r, &q, "/x?q=bad", &[], None).blocked, "another rule still sees ARGS:q");
    let ua = target("REQUEST_HEADERS", Member::Named("user-agent".into()));
    assert!(!with(&r, &ua, "/x", &[("User-Agent", b"evil bot")], None).blocked);
    assert!(with(&r, &ua, "/x", &[("Referer", b"evil")], None).blocked);
    let json: [(&str, &[u8]); 1] = [("Content-Type", b"application/json")];
    let under = target("ARGS", Member::Under("json.comment".into()));
    assert!(!with(&r, &under, "/x", &json, Some(br#"{"comment":{"text":["evil"]}}"#)).blocked);
    assert!(!with(&r, &under, "/x", &json, Some(br#"{"comment":"evil"}"#)).blocked);
    assert!(with(&r, &under, "/x", &json, Some(br#"{"comments":"evil"}"#)).blocked, "a sibling is not below");
    let whole = vec![Exclusion { rules: vec![80], target: None }];
    let v = with(&r, &whole, "/x?a=evil&b=bad", &[], None);
    assert_eq!(ids(&v), vec![81], "rule 80 does not run, rule 81 does");
    assert!(eval(&r, "GET", "/x?q=evil", &[], None).blocked, "exclusions last one request");
    assert!(r.has_rule(80) && r.has_rule(81) && !r.has_rule(82));
}

fn with(r: &CrsRules, ex: &[Exclusion], uri: &str, headers: &[(&str, &[u8])], body: Option<&[u8]>) -> CrsVerdict {
    let tx = Transaction {
        method: if body.is_some() { "POST" } else { "GET" },
        uri,
        protocol: "HTTP/1.1",
        client_ip: "198.51.100.7".parse().expect("ip"),
        headers,
        body,
    };
    r.evaluate_with(&tx, ex)
}
