use pottery::timed;

#[timed(label = "work")]
fn work() {}

fn main() {}
