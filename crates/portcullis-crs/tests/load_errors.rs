//! A rule file using anything the engine does not implement is refused, naming the file, the
//! line the directive starts on and the rule id; nothing is skipped silently.

use portcullis_crs::{CrsRules, LoadError};
use std::path::{Path, PathBuf};

fn crs_dir(name: &str, rules: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-crs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("rules")).expect("mkdir");
    std::fs::write(dir.join("crs-setup.conf.example"), "SecDefaultAction \"phase:2,log,auditlog,pass\"\n")
        .expect("write setup");
    std::fs::write(dir.join("rules").join("REQUEST-100-TEST.conf"), rules).expect("write rules");
    dir
}

fn load_errors(name: &str, rules: &str) -> (PathBuf, Vec<LoadError>) {
    let dir = crs_dir(name, rules);
    let errors = match CrsRules::load(&dir, 1, 5) {
        Ok(_) => Vec::new(),
        Err(e) => e,
    };
    (dir.join("rules").join("REQUEST-100-TEST.conf"), errors)
}

#[test]
fn an_unsupported_operator_names_file_line_and_rule() {
    let (file, errors) = load_errors(
        "op",
        "# comment\n\nSecRule ARGS \"@rx ok\" \"id:1001,phase:2,pass\"\nSecRule ARGS \\\n    \"@inspectFile /bin/check\" \\\n    \"id:1002,phase:2,pass\"\n",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].file, file);
    assert_eq!(errors[0].line, 4);
    assert_eq!(errors[0].rule_id.as_deref(), Some("1002"));
    assert!(errors[0].message.contains("@inspectfile"), "{}", errors[0].message);
}

#[test]
fn an_unsupported_directive_variable_transformation_and_action_are_each_reported() {
    let (file, errors) = load_errors(
        "many",
        "SecRule ARGS \"@rx a\" \"id:2001,phase:2,pass\"\n\
         SecGuardianLog /var/log/guardian\n\
         SecRule RESPONSE_BODY \"@rx b\" \"id:2002,phase:2,pass\"\n\
         SecRule ARGS \"@rx c\" \"id:2003,phase:2,pass,t:urlDecodeUni,t:rot13\"\n\
         SecRule ARGS \"@rx d\" \"id:2004,phase:2,pass,exec:/bin/true\"\n\
         SecRule ARGS \"@rx e\" \"id:2005,phase:2,pass,chain\"\n\
             SecRule REQUEST_HEADERS \"@pm x y\" \"t:none,t:utf8toUnicode,t:bogus\"\n",
    );
    let at = |line: usize| {
        errors.iter().find(|e| e.line == line).unwrap_or_else(|| panic!("no error at line {line}: {errors:?}"))
    };
    assert!(errors.iter().all(|e| e.file == file));
    assert!(at(2).message.contains("SecGuardianLog") && at(2).rule_id.is_none());
    assert!(at(3).message.contains("RESPONSE_BODY") && at(3).rule_id.as_deref() == Some("2002"));
    assert!(at(4).message.contains("rot13") && at(4).rule_id.as_deref() == Some("2003"));
    assert!(at(5).message.contains("exec") && at(5).rule_id.as_deref() == Some("2004"));
    // An error in a chained rule names the chain's id.
    assert!(at(7).message.contains("bogus") && at(7).rule_id.as_deref() == Some("2005"));
    assert_eq!(errors.len(), 5, "{errors:?}");
}

#[test]
fn a_setup_that_enables_rbl_lookups_is_refused() {
    let dir = crs_dir("rbl", "SecRule ARGS \"@rx a\" \"id:3001,phase:2,pass\"\n");
    std::fs::write(
        dir.join("crs-setup.conf"),
        "SecAction \"id:900500,phase:1,nolog,pass,setvar:tx.block_search_ip=1\"\n",
    )
    .expect("write");
    let errors = CrsRules::load(&dir, 1, 5).err().expect("refused");
    assert_eq!(errors[0].file, dir.join("crs-setup.conf"));
    assert_eq!(errors[0].line, 1);
}

#[test]
fn a_missing_directory_or_bad_paranoia_level_is_an_error() {
    assert!(CrsRules::load(Path::new("/nonexistent/crs"), 1, 5).is_err());
    let dir = crs_dir("pl", "SecRule ARGS \"@rx a\" \"id:4001,phase:2,pass\"\n");
    assert!(CrsRules::load(&dir, 5, 5).is_err());
    assert!(CrsRules::load(&dir, 1, 5).is_ok());
}
