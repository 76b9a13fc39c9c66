//! The shipped deployment examples stay valid: the production config loads with the
//! current configuration schema (a renamed key would otherwise break installs).

#[test]
fn production_config_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/memora.toml");
    let config = memora::config::Config::load(Some(&path), Vec::<(String, String)>::new())
        .expect("deploy/memora.toml must load");
    assert_eq!(
        config.storage.data_dir,
        std::path::PathBuf::from("/var/lib/memora")
    );
    assert_eq!(config.http.addr.ip().to_string(), "127.0.0.1");
    assert_eq!(config.log.format, memora::config::LogFormat::Json);
}
