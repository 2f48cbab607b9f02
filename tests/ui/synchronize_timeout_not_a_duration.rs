use pottery::synchronize;

const TWO: u32 = 2;

#[synchronize(key = "printer", timeout = TWO)]
fn print() -> pottery::Result<()> {
    Ok(())
}

#[synchronize(key = "printer", auto_release_time = -5)]
fn print_again() -> pottery::Result<()> {
    Ok(())
}

fn main() {}
