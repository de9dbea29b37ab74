// `sqlx::migrate!` embeds the files it finds when it is compiled but cannot ask cargo to watch a
// folder, so a migration added to either engine would otherwise go unnoticed until a clean build:
// this crate embeds its own, and its schema test embeds SQLite's to compare them.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=../../migrations");
}
