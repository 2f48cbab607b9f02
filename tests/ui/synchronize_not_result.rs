use pottery::synchronize;

#[synchronize(key = "printer")]
fn print_page() -> u32 {
    1
}

fn main() {}
