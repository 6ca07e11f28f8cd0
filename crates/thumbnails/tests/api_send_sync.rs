//! Every public type can cross threads (and the executor's boundary) as users expect.

use thumbnails::*;

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>() {}

#[test]
fn public_types_are_send_and_sync() {
    send_sync::<Config>();
    send_sync::<ConfigBuilder>();
    send_sync::<Input>();
    send_sync::<Source>();
    send_sync::<ResizeOn>();
    send_sync::<Mode>();
    send_sync::<ResizeOptions>();
    send_sync::<ResizeJob>();
    send_sync::<Resized>();
    send_sync::<Thumbnail>();
    send_sync::<Rendered>();
    send_sync::<EncodedThumbnail>();
    send_sync::<OutputFormat>();
    send_sync::<ResizeError>();
    send_sync::<Report>();
    send_sync::<StageStats>();
    send_sync::<Done>();
    send_sync::<Failure>();
    send_sync::<Stage>();
    send_sync::<Event<'static>>();
    send_sync::<PhotoServer>();
    send_sync::<Progress>();
    send_sync::<ProgressMode>();
    send_sync::<ResizeImageTask>();
    send::<Error>();
    send_sync::<Error>();
}

#[test]
fn the_resize_task_has_a_stable_name() {
    use flotilla::Task;
    assert_eq!(
        <ResizeImageTask as Task>::NAME,
        "thumbnails::resize::resize_image"
    );
}
