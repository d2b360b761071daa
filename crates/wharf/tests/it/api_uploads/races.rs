//! Clients racing their own chunks: one session's requests are serialized, so two chunks for
//! the same range accept exactly one and streamed chunks append whole.

use super::*;

/// The bytes an upload holds so far, read from the filesystem layout
/// (`repositories/<repo>/_uploads/<uuid>/data`), which the API does not expose.
fn upload_data(w: &Wharf, repo: &str, location: &str) -> Vec<u8> {
    let path = location.split('?').next().expect("location path");
    let uuid = path.rsplit('/').next().expect("upload uuid");
    let data = w
        .root()
        .join("docker/registry/v2/repositories")
        .join(repo)
        .join("_uploads")
        .join(uuid)
        .join("data");
    std::fs::read(&data).unwrap_or_else(|e| panic!("read {}: {e}", data.display()))
}

#[tokio::test]
async fn racing_chunks_for_the_same_range_accept_exactly_one() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let location = c.start_upload("up/race").await;
    let (a, b) = (random_bytes(1 << 20), random_bytes(1 << 20));
    let range = format!("0-{}", a.len() - 1);

    // Two clients (or a retry racing its original) send the same first chunk: byte 0 can be
    // written once, so one of them must get 416 (spec: chunks "MUST be uploaded in order").
    let (ra, rb) = tokio::join!(
        patch(&c, &location, Some(&range), &a),
        patch(&c, &location, Some(&range), &b)
    );
    let (sa, sb) = (ra.status(), rb.status());
    let resp = c.get(&location).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let after = header(&resp, "range");
    let location = c.location(&resp);
    assert!(
        (sa == StatusCode::ACCEPTED) != (sb == StatusCode::ACCEPTED),
        "PATCHes racing for bytes {range} answered {sa} and {sb}; the upload now has Range {after:?}"
    );
    let (winner, loser) = if sa == StatusCode::ACCEPTED {
        (a, sb)
    } else {
        (b, sa)
    };
    assert!(loser.is_client_error(), "{loser}");
    assert_eq!(after, Some(range));

    let digest = sha256(&winner);
    let resp = finish(&c, &location, &digest, b"").await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_blob(&c, "up/race", &digest, &winner).await;
}

#[tokio::test]
async fn racing_streamed_chunks_append_whole() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let location = c.start_upload("up/race2").await;
    let (a, b) = (random_bytes(1 << 20), random_bytes(1 << 20));

    // Two appends without Content-Range may both succeed, one after the other, or one may be
    // refused; either way the upload holds whole chunks, never interleaved bytes.
    let (ra, rb) = tokio::join!(
        patch(&c, &location, None, &a),
        patch(&c, &location, None, &b)
    );
    let (sa, sb) = (ra.status(), rb.status());
    let candidates = match (sa == StatusCode::ACCEPTED, sb == StatusCode::ACCEPTED) {
        (true, true) => vec![[a.clone(), b.clone()].concat(), [b, a].concat()],
        (true, false) => vec![a],
        (false, true) => vec![b],
        (false, false) => panic!("both appends refused: {sa} {sb}"),
    };
    let resp = c.get(&location).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let after = header(&resp, "range");
    let location = c.location(&resp);
    let held = upload_data(&w, "up/race2", &location);
    let whole = candidates
        .iter()
        .find(|whole| **whole == held)
        .unwrap_or_else(|| {
            panic!(
                "after appends answered {sa} and {sb}, the upload holds {} bytes (Range {after:?}) \
             that are no order of the accepted chunks",
                held.len()
            )
        });
    // The bytes are right; the digest computed while they arrived must be too.
    let resp = finish(&c, &location, &sha256(whole), b"").await;
    expect_status(resp, StatusCode::CREATED, "close after racing appends").await;
    assert_blob(&c, "up/race2", &sha256(whole), whole).await;
}
