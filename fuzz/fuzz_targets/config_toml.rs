//! The operator's files: the directory and the signing key registry.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(directory) = lienthong::directory::Directory::from_toml(text) {
            let names: Vec<String> = directory.organizations().iter().map(|o| o.alias.clone()).collect();
            if let Some(first) = directory.organizations().first() {
                let _ = directory.resolve(&names, &first.code);
            }
        }
        let _ = lienthong::keys::KeyRegistry::from_toml(text);
    }
});
