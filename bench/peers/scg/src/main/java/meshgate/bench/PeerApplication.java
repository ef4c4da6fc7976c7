package meshgate.bench;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;

/** The whole peer: routes come from application.yml and the command line. */
@SpringBootApplication
public class PeerApplication {
    public static void main(String[] args) {
        SpringApplication.run(PeerApplication.class, args);
    }
}
