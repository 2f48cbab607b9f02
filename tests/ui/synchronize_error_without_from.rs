use pottery::synchronize;

#[synchronize(key = "printer")]
fn print_page() -> Result<(), String> {
    Ok(())
}

fn main() {}
