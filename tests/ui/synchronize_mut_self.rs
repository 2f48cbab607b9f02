use pottery::synchronize;

struct Bank;

impl Bank {
    #[synchronize(key = "bank")]
    fn pay(&mut self, amount: u64) -> Result<u64, pottery::Error> {
        Ok(amount)
    }
}

fn main() {}
