// The parameters dock: sliders and spin boxes kept in sync, emitting paramsChanged().
#pragma once

#include "qmpp/diagnostics.h"
#include "qmpp/types.h"

#include <QStringList>
#include <QWidget>
#include <functional>

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QSlider;
class QSpinBox;

class QSettings;

namespace studio {

// A slider and a spin box showing one value; the slider may be non-linear (log scale).
class SliderSpin : public QWidget {
    Q_OBJECT
  public:
    SliderSpin(double lo, double hi, int decimals, std::function<int(double)> toSlider,
               std::function<double(int)> fromSlider, QWidget* parent = nullptr);
    double value() const;
    void setValue(double v); // emits valueChanged when it changes
    QSlider* slider() const { return m_slider; }
    QDoubleSpinBox* spin() const { return m_spin; }

  signals:
    void valueChanged(double v);

  private:
    QSlider* m_slider;
    QDoubleSpinBox* m_spin;
    std::function<int(double)> m_toSlider;
    std::function<double(int)> m_fromSlider;
    bool m_syncing = false;
};

class ParamsPanel : public QWidget {
    Q_OBJECT
  public:
    explicit ParamsPanel(QWidget* parent = nullptr);

    qmpp::MergeParams params() const;
    void setParams(const qmpp::MergeParams& p); // without emitting paramsChanged
    // The parameters as the settings keep them between sessions (group "params").
    static void writeSettings(QSettings& s, const qmpp::MergeParams& p);
    static qmpp::MergeParams readSettings(QSettings& s);
    void setTokenCount(long long n);
    long long tokenCount() const { return m_n; }
    // K is the one the budget gives (not set by hand).
    bool kFollowsBudget() const;
    int patch() const;
    void setPatch(int p);
    void setFidelity(bool ok, double retention);
    // The last result's method diagnostics, with a warning line for each finding.
    void setDiagnostics(const qmpp::MethodDiagnostics& d, double tau);
    QStringList diagnosticWarnings() const { return m_warnings; }
    QString diagnosticsText() const;
    // GPU entries enabled only with a usable device; `why` becomes their tooltip otherwise.
    void setGpu(bool available, const QString& why);

    // The controls, for tests and keyboard users.
    SliderSpin* budget() const { return m_budget; }
    SliderSpin* temperature() const { return m_tau; }
    SliderSpin* gamma() const { return m_gamma; }
    QSpinBox* tokens() const { return m_k; }
    QSpinBox* seed() const { return m_seed; }
    QComboBox* backend() const { return m_backend; }
    QComboBox* precision() const { return m_precision; }
    QComboBox* cluster() const { return m_cluster; }
    QComboBox* method() const { return m_method; }
    QSpinBox* layers() const { return m_layers; }

  signals:
    void paramsChanged();
    void patchChanged(int patch);

  private:
    void changed();
    long long budgetK() const; // max(1, floor(budget x N))
    void budgetToK();
    void kToBudget();

    long long m_n = 1;
    bool m_quiet = false;
    SliderSpin *m_budget, *m_tau, *m_gamma;
    QSpinBox *m_k, *m_layers, *m_refine, *m_seed, *m_patch;
    QDoubleSpinBox *m_eps, *m_alpha;
    QComboBox *m_method, *m_cluster, *m_backend, *m_precision;
    QLabel* m_fidelity;
    QLabel* m_diagnostics;
    QStringList m_warnings;
};

} // namespace studio
