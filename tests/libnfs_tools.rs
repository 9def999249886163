//! Real third-party clients: the libnfs command line tools (`nfs-cp`, `nfs-ls`, `nfs-cat`
//! from Debian's libnfs-utils) against the `volnfs` binary.

mod support;

use std::time::Duration;

use support::{bounded, pattern_bytes, run_tool, sha256_file, Server};

const TOOL_LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn nfs_cp_copies_a_file_in_and_back_out_unchanged() {
    bounded(Duration::from_secs(120), async {
        let server = Server::start();
        let local = tempfile::tempdir().unwrap();
        let src = local.path().join("in.bin");
        let payload = pattern_bytes(7, 3 * 1024 * 1024 + 17);
        std::fs::write(&src, &payload).unwrap();

        let url = server.nfs_url("copied.bin");
        let (status, out, err) =
            run_tool("nfs-cp", &[src.to_str().unwrap(), &url], TOOL_LIMIT).await;
        assert!(status.success(), "nfs-cp in failed: {status}\n{out}\n{err}");
        let on_server = std::fs::read(server.export_dir().join("copied.bin")).unwrap();
        assert_eq!(
            on_server.len(),
            payload.len(),
            "size of the file on the server"
        );
        assert!(
            on_server == payload,
            "bytes on the server differ from what nfs-cp sent"
        );

        let back = local.path().join("out.bin");
        let (status, out, err) =
            run_tool("nfs-cp", &[&url, back.to_str().unwrap()], TOOL_LIMIT).await;
        assert!(
            status.success(),
            "nfs-cp out failed: {status}\n{out}\n{err}"
        );
        assert!(
            std::fs::read(&back).unwrap() == payload,
            "bytes copied back out differ"
        );
    })
    .await;
}

#[tokio::test]
async fn nfs_cat_prints_a_file_written_on_the_server_side() {
    bounded(Duration::from_secs(60), async {
        let server = Server::start();
        let text = "hello from the server side\nsecond line\n";
        std::fs::write(server.export_dir().join("greeting.txt"), text).unwrap();

        let (status, out, err) =
            run_tool("nfs-cat", &[&server.nfs_url("greeting.txt")], TOOL_LIMIT).await;
        assert!(status.success(), "nfs-cat failed: {status}\n{err}");
        assert_eq!(out, text);
    })
    .await;
}

#[tokio::test]
async fn nfs_cat_of_a_nested_path_mounts_the_subdirectory_and_reads_the_file() {
    bounded(Duration::from_secs(60), async {
        let server = Server::start();
        std::fs::create_dir_all(server.export_dir().join("a/b")).unwrap();
        std::fs::write(server.export_dir().join("a/b/deep.txt"), "deep\n").unwrap();

        let (status, out, err) =
            run_tool("nfs-cat", &[&server.nfs_url("a/b/deep.txt")], TOOL_LIMIT).await;
        assert!(status.success(), "nfs-cat failed: {status}\n{err}");
        assert_eq!(out, "deep\n");
    })
    .await;
}

#[tokio::test]
async fn nfs_ls_lists_every_entry_of_a_directory() {
    bounded(Duration::from_secs(60), async {
        let server = Server::start();
        let root = server.export_dir();
        std::fs::write(root.join("alpha.txt"), "a").unwrap();
        std::fs::write(root.join("beta.txt"), "bb").unwrap();
        std::fs::create_dir(root.join("gamma")).unwrap();
        std::fs::write(root.join("gamma/inner.txt"), "i").unwrap();
        std::os::unix::fs::symlink("alpha.txt", root.join("delta-link")).unwrap();

        let (status, out, err) = run_tool("nfs-ls", &[&server.nfs_url("")], TOOL_LIMIT).await;
        assert!(status.success(), "nfs-ls failed: {status}\n{err}");
        let names: Vec<&str> = out
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .collect();
        for expected in ["alpha.txt", "beta.txt", "gamma", "delta-link"] {
            assert_eq!(
                names.iter().filter(|n| **n == expected).count(),
                1,
                "{expected} should be listed exactly once in:\n{out}"
            );
        }
        assert!(
            !names.contains(&"inner.txt"),
            "non-recursive listing showed a nested file:\n{out}"
        );
        let gamma = out.lines().find(|l| l.ends_with(" gamma")).unwrap();
        assert!(
            gamma.starts_with('d'),
            "gamma should be shown as a directory: {gamma}"
        );
        let beta = out.lines().find(|l| l.ends_with(" beta.txt")).unwrap();
        assert!(
            beta.starts_with('-'),
            "beta.txt should be shown as a regular file: {beta}"
        );

        let (status, out, err) = run_tool("nfs-ls", &["-R", &server.nfs_url("")], TOOL_LIMIT).await;
        assert!(status.success(), "nfs-ls -R failed: {status}\n{err}");
        assert!(
            out.lines().any(|l| l.ends_with(" gamma/inner.txt")),
            "recursive listing is missing gamma/inner.txt:\n{out}"
        );
    })
    .await;
}

#[tokio::test]
async fn nfs_cp_to_a_nested_path_mounts_the_subdirectory_and_creates_the_file() {
    bounded(Duration::from_secs(60), async {
        let server = Server::start();
        std::fs::create_dir(server.export_dir().join("sub")).unwrap();
        let local = tempfile::tempdir().unwrap();
        let src = local.path().join("small.txt");
        std::fs::write(&src, "small\n").unwrap();

        let (status, out, err) = run_tool(
            "nfs-cp",
            &[src.to_str().unwrap(), &server.nfs_url("sub/small.txt")],
            TOOL_LIMIT,
        )
        .await;
        assert!(status.success(), "nfs-cp failed: {status}\n{out}\n{err}");
        assert_eq!(
            std::fs::read_to_string(server.export_dir().join("sub/small.txt")).unwrap(),
            "small\n"
        );
    })
    .await;
}

/// One big transfer: 256 MiB in and back out, compared by SHA-256 at every hop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow"] // ~40 s in a debug build
async fn large_file_of_256_mib_survives_a_round_trip_through_nfs_cp() {
    const SIZE: usize = 256 * 1024 * 1024;
    bounded(Duration::from_secs(420), async {
        let server = Server::start();
        let local = tempfile::tempdir().unwrap();
        let src = local.path().join("big.bin");
        {
            use std::io::Write;
            let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
            let chunk = 8 * 1024 * 1024;
            for i in 0..(SIZE / chunk) {
                f.write_all(&pattern_bytes(1000 + i as u64, chunk)).unwrap();
            }
            f.flush().unwrap();
        }
        let want = sha256_file(&src);

        let url = server.nfs_url("big.bin");
        let limit = Duration::from_secs(180);
        let (status, out, err) = run_tool("nfs-cp", &[src.to_str().unwrap(), &url], limit).await;
        assert!(status.success(), "nfs-cp in failed: {status}\n{out}\n{err}");
        let on_server = server.export_dir().join("big.bin");
        assert_eq!(
            std::fs::metadata(&on_server).unwrap().len(),
            SIZE as u64,
            "size on the server"
        );
        assert_eq!(
            sha256_file(&on_server),
            want,
            "sha256 of the file on the server"
        );

        let back = local.path().join("back.bin");
        let (status, out, err) = run_tool("nfs-cp", &[&url, back.to_str().unwrap()], limit).await;
        assert!(
            status.success(),
            "nfs-cp out failed: {status}\n{out}\n{err}"
        );
        assert_eq!(
            sha256_file(&back),
            want,
            "sha256 of the file copied back out"
        );
    })
    .await;
}
