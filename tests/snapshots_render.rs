//! Snapshots of the rendered email (HTML and text) for a fixed day and subscriber: a change
//! to the templates or the view shows up here as a diff to review (`cargo insta review`).

mod support;

use support::render_recorded_day;

#[test]
fn the_digest_of_a_fixed_day_renders_as_reviewed() {
    let (r, _) = render_recorded_day(
        "[smtp]\nfrom = \"Paperboy <digest@paperboy.test>\"\n\
         [unsubscribe]\nbase_url = \"https://digest.paperboy.test/unsubscribe\"\n\
         secret = \"snapshot secret, sixteen+\"\n\
         [topics.agents]\nkeywords = [\"agent\", \"agents\"]\nmax_papers = 3\n\
         [topics.multimodal]\nkeywords = [\"multimodal\", \"vision-language\"]\nmax_papers = 2\n\
         [[subscribers]]\nemail = \"ada@example.org\"\nname = \"Ada\"\ntopics = [\"agents\", \"multimodal\"]\n",
    );
    insta::assert_snapshot!("subject", r.subject);
    insta::assert_snapshot!("text", r.text);
    insta::assert_snapshot!("html", r.html);
}
