//! `partnerkit run | crd | manifests`.

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("crd") => {
            print!("{}", partnerkit::crdgen::all_yaml()?);
            Ok(())
        }
        Some("manifests") => {
            print!("{}", partnerkit::manifests::all_yaml()?);
            Ok(())
        }
        Some("crdgen") => {
            let dir = args.get(1).map(String::as_str).unwrap_or("crds");
            for (file, crd) in partnerkit::crdgen::crds() {
                let path = std::path::Path::new(dir).join(file);
                std::fs::write(&path, partnerkit::crdgen::to_yaml(&crd)?).with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        _ => {
            eprintln!("usage: partnerkit run [--config PATH] | crd | manifests | crdgen [DIR]");
            std::process::exit(2);
        }
    }
}
