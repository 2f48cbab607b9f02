use pottery::synchronize;

#[synchronize]
fn work() -> Result<(), pottery::Error> {
    Ok(())
}

fn main() {}
