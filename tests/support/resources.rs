//! Measures what a child process uses: its peak resident memory (`VmHWM` of
//! `/proc/PID/status`) and the bytes in a folder it writes temporary files to.
//!
//! Include it with `#[path = "support/resources.rs"] mod resources;`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often memory and temporary folders are sampled.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(2);

/// Samples a folder's size on a thread of its own every [`SAMPLE_INTERVAL`], for a
/// process that serves one request after another. Each request gets a period of its
/// own with its own peak. Stops on drop.
pub struct FolderSampler {
    period: Arc<Mutex<Period>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The current period and the largest folder size sampled in it.
#[derive(Default)]
struct Period {
    /// Counts the periods, so a sample taken across the start of a period is dropped.
    number: u64,
    peak_bytes: u64,
}

impl FolderSampler {
    /// Starts sampling `folder`.
    pub fn start(folder: &Path) -> Self {
        let period = Arc::new(Mutex::new(Period::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let folder = folder.to_path_buf();
            let period = period.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let number = period.lock().expect("period").number;
                    let bytes = folder_bytes(&folder);
                    let mut period = period.lock().expect("period");
                    if period.number == number {
                        period.peak_bytes = period.peak_bytes.max(bytes);
                    }
                    drop(period);
                    std::thread::sleep(SAMPLE_INTERVAL);
                }
            })
        };
        Self {
            period,
            stop,
            thread: Some(thread),
        }
    }

    /// Starts a new period with a peak of 0.
    pub fn start_period(&self) {
        let mut period = self.period.lock().expect("period");
        period.number += 1;
        period.peak_bytes = 0;
    }

    /// Returns the largest folder size sampled in the current period, in bytes.
    pub fn peak_bytes(&self) -> u64 {
        self.period.lock().expect("period").peak_bytes
    }
}

impl Drop for FolderSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Resets the `VmHWM` of process `pid` to its current resident set, by writing 5 to
/// `/proc/PID/clear_refs` (Linux 4.0 and later, see proc(5)), and returns that value in
/// KiB. A later [`high_water_mark_kib`] then reads the peak since this call.
pub fn reset_high_water_mark(pid: u32) -> u64 {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the peak resident set");
    high_water_mark_kib(&status_path(pid)).expect("process status")
}

/// Returns the path of the `/proc` status file of process `pid`.
pub fn status_path(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/status"))
}

/// Reads `VmHWM`, the peak resident set size in KiB, from a `/proc/PID/status` file.
/// Returns `None` once the process has exited.
pub fn high_water_mark_kib(status_path: &Path) -> Option<u64> {
    let status = std::fs::read_to_string(status_path).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Sums the sizes of every file under `dir`.
pub fn folder_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        total += if metadata.is_dir() {
            folder_bytes(&entry.path())
        } else {
            metadata.len()
        };
    }
    total
}
