// SQL injection blacklist checker - matches C implementation exactly

use super::sqli_data;

/// Check if a fingerprint is blacklisted
/// This matches libinjection_sqli_blacklist from the C version
pub fn is_blacklisted(fingerprint: &str) -> bool {
    // Match the C version: convert v0 fingerprint to v1 format
    // v0: up to 5 chars, mixed case  
    // v1: '0' prefix, up to 5 more chars, upper case
    
    if fingerprint.is_empty() {
        return false;
    }
    
    // Build the v1 fingerprint with '0' prefix and uppercase
    // (Portcullis: lookup_word compares in upper case, so the '0' prefix is all it needs;
    // built in a stack buffer, as this runs once per fingerprint.)
    let mut fp2 = [0u8; 16];
    let Some(rest) = fp2.get_mut(1..=fingerprint.len()) else {
        return false; // fingerprints are at most 8 bytes: longer is no keyword
    };
    rest.copy_from_slice(fingerprint.as_bytes());
    fp2[0] = b'0';
    
    // Check if this fingerprint exists in the keywords table with type 'F'
    match core::str::from_utf8(&fp2[..=fingerprint.len()]) {
        Ok(fp2) => sqli_data::lookup_word(fp2) == crate::sqli::TokenType::Fingerprint,
        Err(_) => false,
    }
}