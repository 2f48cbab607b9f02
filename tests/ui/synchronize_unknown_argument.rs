use pottery::synchronize;

#[synchronize(key = "printer", retries = 3)]
fn print_page() -> Result<(), pottery::Error> {
    Ok(())
}

fn main() {}
