package lakehouse.serve;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.security.spec.KeySpec;
import java.util.Base64;
import java.util.List;

import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.security.sasl.AuthenticationException;

import org.apache.hive.service.auth.PasswdAuthenticationProvider;

/**
 * HiveServer2 CUSTOM authentication for `lakehouse serve-sql`: a user name and password are checked
 * against the password file named by the system property lakehouse.serve.users_file (lines
 * "name:pbkdf2_sha256:ITERATIONS:SALT:HASH", base64 salt and PBKDF2-HMAC-SHA256 hash, written by
 * lakehouse/passwords.py). The file is read at each login, so users added or removed take effect
 * without a restart. No password is logged.
 */
public final class PasswordFileAuthenticator implements PasswdAuthenticationProvider {

    @Override
    public void Authenticate(String user, String password) throws AuthenticationException {
        String path = System.getProperty("lakehouse.serve.users_file");
        if (path == null || user == null || password == null) {
            throw new AuthenticationException("a user name and password are required");
        }
        List<String> lines;
        try {
            lines = Files.readAllLines(Paths.get(path), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new AuthenticationException("the users file cannot be read", e);
        }
        for (String line : lines) {
            String[] parts = line.split(":");
            if (parts.length == 5 && parts[0].equals(user) && parts[1].equals("pbkdf2_sha256")) {
                if (matches(password, Integer.parseInt(parts[2]), Base64.getDecoder().decode(parts[3]),
                            Base64.getDecoder().decode(parts[4]))) {
                    return;
                }
                break;
            }
        }
        throw new AuthenticationException("wrong user name or password");
    }

    private static boolean matches(String password, int iterations, byte[] salt, byte[] expected)
            throws AuthenticationException {
        try {
            KeySpec spec = new PBEKeySpec(password.toCharArray(), salt, iterations, expected.length * 8);
            byte[] got = SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(spec).getEncoded();
            return MessageDigest.isEqual(got, expected);
        } catch (Exception e) {
            throw new AuthenticationException("password check failed", e);
        }
    }
}
