use pottery::synchronize;

#[synchronize(key = "printer", timeout = "2 s")]
fn print() -> pottery::Result<()> {
    Ok(())
}

fn main() {}
