use pottery::timed;

fn report(ms: u64) {
    println!("{ms}");
}

#[timed(callback = report)]
fn work() {}

fn main() {}
