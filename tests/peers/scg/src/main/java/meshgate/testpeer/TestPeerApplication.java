package meshgate.testpeer;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;

/**
 * The whole test peer: a stock Spring Cloud Gateway. Routes, ports and actuator exposure all
 * come from the application.yml each test passes with --spring.config.location.
 */
@SpringBootApplication
public class TestPeerApplication {
    public static void main(String[] args) {
        SpringApplication.run(TestPeerApplication.class, args);
    }
}
