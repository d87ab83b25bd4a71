//! AFL++ harness: the input as the only segment file of a data directory;
//! the store is opened and everything it serves read forward and backward.
//! A panic, a failed open or an inconsistent read is a crash.

use logtap_core::{Direction, ReadOptions};
use logtap_store::{Store, StoreConfig, SyncPolicy};

fn read_all(store: &Store, direction: Direction) -> Vec<u64> {
    let options = ReadOptions {
        direction,
        ..ReadOptions::default()
    };
    let mut reader = store.reader(options).expect("reader");
    let mut cursors = Vec::new();
    while let Some(entry) = reader.next_entry().expect("read") {
        cursors.push(entry.cursor);
    }
    cursors
}

fn main() {
    // One directory for the whole run; each input replaces the segment.
    let dir = std::env::temp_dir().join(format!("logtap-afl-{}", std::process::id()));
    afl::fuzz!(|data: &[u8]| {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("00000000000000000001.seg"), data).unwrap();
        let mut config = StoreConfig::new(&dir);
        config.sync = SyncPolicy::Never;
        config.block_bytes = 128;
        let store = Store::open(config).expect("open");
        let forward = read_all(&store, Direction::Forward);
        assert!(forward.windows(2).all(|w| w[0] < w[1]), "cursors out of order");
        let mut backward = read_all(&store, Direction::Backward);
        backward.reverse();
        assert_eq!(forward, backward);
        assert_eq!(
            store.count(&ReadOptions::default()).unwrap(),
            forward.len() as u64
        );
    });
}
