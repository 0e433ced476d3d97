//! Snapshots of the rendered email (HTML and text) for a fixed day and subscriber: a change
//! to the templates or the view shows up here as a diff to review (`cargo insta review`).

use std::collections::HashMap;

use chrono::NaiveDate;
use paperboy::config::Config;
use paperboy::digest::DayList;
use paperboy::mail::UnsubscribeLinks;
use paperboy::render::Renderer;
use paperboy::source::parse_daily_papers;

#[test]
fn the_digest_of_a_fixed_day_renders_as_reviewed() {
    let cfg = Config::load_str(
        "[smtp]\nfrom = \"Paperboy <digest@paperboy.test>\"\n\
         [unsubscribe]\nbase_url = \"https://digest.paperboy.test/unsubscribe\"\n\
         secret = \"snapshot secret, sixteen+\"\n\
         [topics.agents]\nkeywords = [\"agent\", \"agents\"]\nmax_papers = 3\n\
         [topics.multimodal]\nkeywords = [\"multimodal\", \"vision-language\"]\nmax_papers = 2\n\
         [[subscribers]]\nemail = \"ada@example.org\"\nname = \"Ada\"\ntopics = [\"agents\", \"multimodal\"]\n",
        "snapshot",
    )
    .unwrap();
    let body = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf/2026-04-10.json"),
    )
    .unwrap();
    let papers = parse_daily_papers(&body).unwrap();
    let sub = &cfg.subscribers[0];
    let digest =
        DayList::new(&papers).select(sub, &cfg.topics, &Default::default(), &Default::default());
    let by_id: HashMap<_, _> = papers.iter().map(|p| (p.id.clone(), p.clone())).collect();
    let links = UnsubscribeLinks::for_subscriber(&cfg, &sub.email.key());
    let r = Renderer::new(&cfg.digest, &cfg.topics)
        .unwrap()
        .render(
            sub,
            NaiveDate::from_ymd_opt(2026, 4, 10).unwrap(),
            &digest,
            &by_id,
            links.visible(),
        )
        .unwrap();
    insta::assert_snapshot!("subject", r.subject);
    insta::assert_snapshot!("text", r.text);
    insta::assert_snapshot!("html", r.html);
}
