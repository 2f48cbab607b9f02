use pottery::synchronize;

#[synchronize(key = "printer", blocking = 5)]
fn print_page() -> Result<(), pottery::Error> {
    Ok(())
}

fn main() {}
