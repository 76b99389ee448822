//! Files both ways against the testkit: uploads from a path, bytes and a
//! reader arrive byte for byte, several to a request and by `attach://`;
//! a 50 MiB upload streams in a few MiB; a 5xx mid-upload sends the whole
//! file again; downloads arrive byte for byte under their cap, and the
//! download path never shows the token (see: #12).

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use smolgram::api::generated::methods::{SendDocument, SendMediaGroup, SendPhoto};
use smolgram::api::generated::types::{File, InputMediaDocument, InputMediaPhoto};
use smolgram::api::{types::ChatId, Client, RetryPolicy, Token, Upload};
use smolgram::testkit::{Digest, FakeApi, Fault};
use smolgram::{Error, Runtime};

use common::{secret, Logs};

const CHAT: ChatId = ChatId(7);

fn client(api: &FakeApi) -> Client {
    Client::new(&api.url(), &Token::parse(FakeApi::TOKEN).unwrap(), 2)
}

/// `len` bytes of a fixed pseudo-random stream: no two files alike, no
/// run that a bug could pass over unseen.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

/// A file in the temp directory that this test owns, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        let dir = std::env::temp_dir().join(format!("smolgram-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn uploads_from_a_path_bytes_or_a_reader_arrive_byte_for_byte() {
    let api = FakeApi::start();
    let client = client(&api);
    let rt = Runtime::new();
    let on_disk = data(300_000, 1);
    let file = TempFile::new("disk.bin", &on_disk);
    let in_memory = data(70_000, 2);
    let factory = data(200_001, 3);
    let once = data(5_000, 4);
    let served = factory.clone();
    let uploads = [
        (Upload::path(&file.0), on_disk),
        (Upload::bytes("memory.bin", in_memory.clone()), in_memory),
        // No length: the body goes chunked.
        (
            Upload::from_fn("factory.bin", move || {
                Ok(std::io::Cursor::new(served.clone()))
            }),
            factory,
        ),
        (
            Upload::reader("once.bin", std::io::Cursor::new(once.clone())).with_len(5_000),
            once,
        ),
    ];
    for (upload, bytes) in uploads {
        let name = upload.name().to_owned();
        let sent = rt
            .block_on(client.send(&SendDocument::new(CHAT, upload).caption("here")))
            .unwrap()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = api
            .upload(&name)
            .unwrap_or_else(|| panic!("{name} arrived"));
        assert_eq!(got.bytes.as_deref(), Some(&bytes[..]), "{name}");
        assert_eq!(got.len, bytes.len() as u64);
        let document = sent.document.expect("a document message");
        assert_eq!(document.file_id, got.file_id, "the answer names the upload");
        assert_eq!(document.file_name.as_deref(), Some(name.as_str()));
        assert_eq!(sent.caption.as_deref(), Some("here"));
    }
    assert_eq!(api.calls("sendDocument").len(), 4);
}

#[test]
fn several_files_go_in_one_request_and_a_media_group_by_attach() {
    let api = FakeApi::start();
    let client = client(&api);
    let rt = Runtime::new();
    let (doc, thumb) = (data(40_000, 5), data(3_000, 6));
    let with_thumb = SendDocument::new(CHAT, Upload::bytes("doc.pdf", doc.clone()))
        .thumbnail(Upload::bytes("thumb.jpg", thumb.clone()));
    rt.block_on(client.send(&with_thumb)).unwrap().unwrap();
    let call = &api.calls("sendDocument")[0];
    assert_eq!(call["document"], "attach://file0");
    assert_eq!(call["thumbnail"], "attach://file1");
    assert_eq!(api.upload("doc.pdf").unwrap().bytes.unwrap(), doc);
    assert_eq!(api.upload("thumb.jpg").unwrap().bytes.unwrap(), thumb);

    let photos: Vec<Vec<u8>> = (0..3).map(|i| data(10_000 + i, 10 + i as u64)).collect();
    let mut media: Vec<_> = photos
        .iter()
        .enumerate()
        .map(|(i, p)| {
            InputMediaPhoto::new(Upload::bytes(format!("p{i}.jpg"), p.clone()))
                .caption(format!("photo {i}"))
                .into()
        })
        .collect();
    // A file Telegram already has goes by its id, beside the uploads.
    let known = api.add_file("known.jpg", b"known".to_vec());
    media.push(InputMediaPhoto::new(smolgram::api::generated::InputFile::file_id(&known)).into());
    let sent = rt
        .block_on(client.send(&SendMediaGroup::new(CHAT, media)))
        .unwrap()
        .unwrap();
    assert_eq!(api.calls("sendMediaGroup").len(), 1, "one request");
    let items: serde_json::Value =
        serde_json::from_str(api.calls("sendMediaGroup")[0]["media"].as_str().unwrap()).unwrap();
    assert_eq!(items[2]["media"], "attach://file2");
    assert_eq!(items[3]["media"], known.as_str());
    assert_eq!(sent.len(), 4);
    for (i, photo) in photos.iter().enumerate() {
        let got = api.upload(&format!("p{i}.jpg")).unwrap();
        assert_eq!(got.bytes.as_deref(), Some(&photo[..]));
        assert_eq!(got.method, "sendmediagroup");
        let sizes = sent[i].photo.as_ref().expect("a photo message");
        assert_eq!(sizes[0].file_id, got.file_id);
        assert_eq!(
            sent[i].caption.as_deref(),
            Some(format!("photo {i}").as_str())
        );
    }
    assert_eq!(sent[3].photo.as_ref().unwrap()[0].file_id, known);

    // Documents in a group, and a photo by path, the same way.
    let docs: Vec<_> = (0..2)
        .map(|i| InputMediaDocument::new(Upload::bytes(format!("d{i}"), vec![i; 9])).into())
        .collect();
    rt.block_on(client.send(&SendMediaGroup::new(CHAT, docs)))
        .unwrap()
        .unwrap();
    assert_eq!(api.upload("d1").unwrap().bytes.unwrap(), vec![1; 9]);
}

/// How many KiB `field` (`VmRSS`, `VmHWM`) of /proc/self/status says.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

const RSS_CHILD: &str = "SMOLGRAM_FILES_RSS_CHILD";
const BIG: usize = 50 * 1024 * 1024;
/// "A few MiB": what a 50 MiB upload may add to the process's peak RSS.
const RSS_BUDGET_KIB: u64 = 6 * 1024;

/// Runs in a process of its own (this test binary again, this test only),
/// so that no other test's memory moves the figures.
#[test]
fn a_50_mib_upload_raises_peak_rss_by_a_few_mib_at_most() {
    if std::env::var_os(RSS_CHILD).is_some() {
        return measure_a_50_mib_upload();
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_50_mib_upload_raises_peak_rss_by_a_few_mib_at_most",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(RSS_CHILD, "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the measuring process failed:\n{text}"
    );
    let delta: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("rss_delta_kib="))
        .unwrap_or_else(|| panic!("no measurement in:\n{text}"))
        .trim()
        .parse()
        .unwrap();
    eprintln!("a 50 MiB upload raised peak RSS by {delta} KiB");
    assert!(
        delta <= RSS_BUDGET_KIB,
        "a 50 MiB upload raised peak RSS by {delta} KiB (budget {RSS_BUDGET_KIB})"
    );
}

fn measure_a_50_mib_upload() {
    // The file is written in pieces; its bytes never sit in memory whole.
    let path = std::env::temp_dir().join(format!("smolgram-50mib-{}", std::process::id()));
    let mut digest = Digest::new();
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut rng = fastrand::Rng::with_seed(50);
        let mut piece = vec![0; 1024 * 1024];
        for _ in 0..BIG / piece.len() {
            piece.iter_mut().for_each(|b| *b = rng.u8(..));
            digest.update(&piece);
            out.write_all(&piece).unwrap();
        }
        out.flush().unwrap();
    }
    let file = TempFile(path);
    let api = FakeApi::start();
    api.keep_upload_bytes(0); // the fake keeps lengths and digests only
    let client = client(&api);
    let rt = Runtime::new();
    // Warm up: the io thread, its connection and buffers, the fake's task.
    let warm = data(1024 * 1024, 51);
    rt.block_on(client.send(&SendDocument::new(CHAT, Upload::bytes("warm", warm))))
        .unwrap()
        .unwrap();
    drop(rt.block_on(client.send(&SendDocument::new(
        CHAT,
        Upload::path(&file.0).file_name("warm2"),
    ))));
    // Peak RSS from here: reset the high-water mark (Linux ≥ 4.0) and also
    // sample, in case the reset is not allowed.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_kib("VmRSS:");
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = std::sync::Arc::clone(&sampling);
        std::thread::spawn(move || {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(status_kib("VmRSS:"));
                std::thread::sleep(Duration::from_millis(2));
            }
            peak
        })
    };
    rt.block_on(client.send(&SendDocument::new(CHAT, Upload::path(&file.0))))
        .unwrap()
        .unwrap();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let sampled = sampler.join().unwrap();
    let hwm = if reset { status_kib("VmHWM:") } else { 0 };
    let got = api
        .upload(&file.0.file_name().unwrap().to_string_lossy())
        .unwrap();
    assert_eq!(
        (got.len, got.digest),
        (BIG as u64, digest.value()),
        "arrived intact"
    );
    let delta = hwm.max(sampled).saturating_sub(before);
    println!("rss_before_kib={before} hwm_kib={hwm} sampled_peak_kib={sampled} hwm_reset={reset}");
    println!("rss_delta_kib={delta}");
}

#[test]
fn a_5xx_mid_upload_sends_the_whole_file_again_and_it_arrives_intact() {
    let api = FakeApi::start();
    let client = client(&api);
    let rt = Runtime::new();
    let bytes = data(1024 * 1024 + 17, 20);
    let file = TempFile::new("retried.bin", &bytes);
    api.fault(
        "sendDocument",
        Fault::MidUpload {
            after: 64 * 1024,
            code: 502,
        },
        1,
    );
    let sent = rt
        .block_on(client.send(&SendDocument::new(CHAT, Upload::path(&file.0))))
        .unwrap()
        .unwrap();
    assert_eq!(api.unserved_faults("sendDocument"), 0, "the fault was met");
    assert_eq!(api.calls("sendDocument").len(), 2, "cut, then sent again");
    let uploads = api.uploads();
    assert_eq!(uploads.len(), 1, "only the whole one counts");
    assert_eq!(uploads[0].bytes.as_deref(), Some(&bytes[..]));
    assert_eq!(sent.document.unwrap().file_id, uploads[0].file_id);

    // A one-shot reader cannot be sent again, and says so.
    api.fault(
        "sendDocument",
        Fault::MidUpload {
            after: 1024,
            code: 502,
        },
        1,
    );
    let once = Upload::reader("once.bin", std::io::Cursor::new(bytes.clone()))
        .with_len(bytes.len() as u64);
    let e = rt
        .block_on(client.send(&SendDocument::new(CHAT, once)))
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, Error::File { .. }), "{e:?}");
    assert!(e.to_string().contains("one-shot"), "{e}");
    assert_eq!(api.uploads().len(), 1);
}

#[test]
fn a_missing_file_fails_at_once_and_is_not_retried() {
    let api = FakeApi::start();
    let client = client(&api).with_retry(RetryPolicy::DEFAULT);
    let rt = Runtime::new();
    let upload = Upload::path("/nonexistent/smolgram/cat.jpg");
    let e = rt
        .block_on(client.send(&SendPhoto::new(CHAT, upload)))
        .unwrap()
        .unwrap_err();
    assert!(
        e.to_string().starts_with("sendPhoto: file \"cat.jpg\": "),
        "{e}"
    );
    assert!(api.calls("sendPhoto").is_empty(), "nothing was sent");
}

#[test]
fn downloads_arrive_byte_for_byte_to_a_writer_and_a_path() {
    let api = FakeApi::start();
    let client = client(&api);
    let rt = Runtime::new();
    let bytes = data(700_000, 30);
    let id = api.add_file("song.mp3", bytes.clone());
    let file = rt.block_on(client.get_file(&id)).unwrap().unwrap();
    assert_eq!(file.file_size, Some(bytes.len() as i64));
    let got = rt
        .block_on(client.download(&file, Vec::new(), 1024 * 1024))
        .unwrap()
        .unwrap();
    assert!(got == bytes, "bytes out differ from bytes in");
    let to = std::env::temp_dir().join(format!("smolgram-download-{}", std::process::id()));
    let len = rt
        .block_on(client.download_to(&file, &to, 1024 * 1024))
        .unwrap()
        .unwrap();
    assert_eq!(len, bytes.len() as u64);
    assert!(std::fs::read(&to).unwrap() == bytes);
    std::fs::remove_file(&to).unwrap();

    // What the bot uploaded, it can download again.
    let photo = data(20_000, 31);
    let sent = rt
        .block_on(client.send(&SendPhoto::new(CHAT, Upload::bytes("p.jpg", photo.clone()))))
        .unwrap()
        .unwrap();
    let id = sent.photo.unwrap()[0].file_id.clone();
    let back = rt
        .block_on(async {
            let file = client.get_file(id).await?;
            client.download(&file, Vec::new(), 1 << 20).await
        })
        .unwrap()
        .unwrap();
    assert!(back == photo);

    // A local Bot API server's absolute path is read from the disk.
    let local_bytes = data(33_333, 32);
    let local = TempFile::new("local.bin", &local_bytes);
    let id = api.add_local_file(&local.0);
    let file = rt.block_on(client.get_file(id)).unwrap().unwrap();
    assert_eq!(file.file_path.as_deref(), local.0.to_str());
    let got = rt
        .block_on(client.download(&file, Vec::new(), 1 << 20))
        .unwrap()
        .unwrap();
    assert!(got == local_bytes);
}

#[test]
fn the_cap_refuses_an_oversized_file_by_its_size_and_while_streaming() {
    let api = FakeApi::start();
    let client = client(&api);
    let rt = Runtime::new();
    let id = api.add_file("big.bin", data(100_000, 40));
    let file = rt.block_on(client.get_file(&id)).unwrap().unwrap();
    let e = rt
        .block_on(client.download(&file, Vec::new(), 99_999))
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooLarge {
                size: Some(100_000),
                cap: 99_999,
                ..
            }
        ),
        "{e:?}"
    );
    // Without a file_size, the answer's length refuses it before the body.
    let unsized_file: File = serde_json::from_value(serde_json::json!({
        "file_id": file.file_id, "file_unique_id": "u", "file_path": file.file_path,
    }))
    .unwrap();
    let e = rt
        .block_on(client.download(&unsized_file, Vec::new(), 50_000))
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge { cap: 50_000, .. }), "{e:?}");
    // A local file by its metadata, and a download_to that failed leaves no file.
    let local = TempFile::new("local-big.bin", &data(10_000, 41));
    let local_id = api.add_local_file(&local.0);
    let mut local_file = rt.block_on(client.get_file(local_id)).unwrap().unwrap();
    local_file.file_size = None;
    let to = std::env::temp_dir().join(format!("smolgram-capped-{}", std::process::id()));
    let e = rt
        .block_on(client.download_to(&local_file, &to, 9_999))
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
    assert!(!to.exists(), "a refused download leaves nothing behind");
}

#[test]
fn the_token_appears_in_no_error_or_log_line_of_the_download_path() {
    let logs = Logs::capture();
    let api = FakeApi::start();
    let client = client(&api);
    let rt = Runtime::new();
    let mut errors: Vec<Error> = Vec::new();
    let id = api.add_file("f.bin", data(5_000, 60));
    let file = rt.block_on(client.get_file(&id)).unwrap().unwrap();
    rt.block_on(client.download(&file, Vec::new(), 1 << 20))
        .unwrap()
        .unwrap();
    errors.push(
        rt.block_on(client.download(&file, Vec::new(), 10))
            .unwrap()
            .unwrap_err(),
    );
    // A path the server does not have: its 404.
    let mut gone = file.clone();
    gone.file_path = Some("documents/nothing".into());
    gone.file_size = None;
    errors.push(
        rt.block_on(client.download(&gone, Vec::new(), 1 << 20))
            .unwrap()
            .unwrap_err(),
    );
    // A local server's path holds the token: it must not show either.
    let mut local = file.clone();
    local.file_path = Some(format!(
        "/var/lib/telegram-bot-api/{}/documents/x",
        FakeApi::TOKEN
    ));
    errors.push(
        rt.block_on(client.download(&local, Vec::new(), 1 << 20))
            .unwrap()
            .unwrap_err(),
    );
    // A writer that fails.
    #[derive(Debug)]
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    errors.push(
        rt.block_on(client.download(&file, Broken, 1 << 20))
            .unwrap()
            .unwrap_err(),
    );
    // An API that is not there.
    let dead = Client::new(
        "http://127.0.0.1:9",
        &Token::parse(FakeApi::TOKEN).unwrap(),
        1,
    );
    errors.push(
        rt.block_on(dead.download(&file, Vec::new(), 1 << 20))
            .unwrap()
            .unwrap_err(),
    );
    assert!(
        matches!(errors[1], Error::Api { code: 404, .. }),
        "{:?}",
        errors[1]
    );
    assert!(matches!(errors[2], Error::File { .. }), "{:?}", errors[2]);
    assert!(
        matches!(errors[4], Error::Network { .. }),
        "{:?}",
        errors[4]
    );
    for e in &errors {
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains(secret()), "the token leaked: {shown}");
            assert!(!shown.contains("/file/bot"), "the URL leaked: {shown}");
        }
    }
    let downloads = logs.matching("download file_id=");
    assert!(
        !downloads.is_empty(),
        "the downloads were logged: {:?}",
        logs.lines()
    );
    logs.assert_no_token();
}
