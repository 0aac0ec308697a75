fn main() {
    let a: Vec<String> = std::env::args().collect();
    let k = micros_debian::signature::Keyring::load(std::path::Path::new(&a[2])).unwrap();
    let t = std::fs::read_to_string(&a[1]).unwrap();
    match micros_debian::signature::verify_inrelease(&t, &k) {
        Ok(s) => println!("OK {} bytes: {}", s.len(), &s[..200]),
        Err(e) => println!("ERR {e}"),
    }
}
